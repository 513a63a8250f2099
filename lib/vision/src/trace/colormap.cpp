#include "sparsescope/vision/colormap.h"

#include <ATen/ATen.h>

#include <cmath>

#include "colormap_tables.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

constexpr struct {
  Colormap colormap;
  const char* name;
} kNames[] = {{Colormap::Viridis, "viridis"},
              {Colormap::Magma, "magma"},
              {Colormap::Inferno, "inferno"},
              {Colormap::Turbo, "turbo"},
              {Colormap::Gray, "gray"}};

// The colormap's 256 entries as a uint8 [256, 3] tensor.
at::Tensor lookup_table(Colormap colormap) {
  const std::uint8_t(*table)[3] = nullptr;
  switch (colormap) {
    case Colormap::Viridis:
      table = detail::kViridis;
      break;
    case Colormap::Magma:
      table = detail::kMagma;
      break;
    case Colormap::Inferno:
      table = detail::kInferno;
      break;
    case Colormap::Turbo:
      table = detail::kTurbo;
      break;
    case Colormap::Gray:
      return at::arange(256, at::kByte).unsqueeze(1).expand({256, 3}).contiguous();
  }
  return at::from_blob(const_cast<std::uint8_t*>(&table[0][0]), {256, 3}, at::kByte).clone();
}

}  // namespace

Colormap parse_colormap(const std::string& name) {
  std::string choices;
  for (const auto& entry : kNames) {
    if (name == entry.name) return entry.colormap;
    choices += std::string(choices.empty() ? "" : ", ") + entry.name;
  }
  SPARSESCOPE_FAIL("unknown colormap '", name, "' (choose one of ", choices, ")");
}

const char* to_string(Colormap colormap) {
  for (const auto& entry : kNames) {
    if (entry.colormap == colormap) return entry.name;
  }
  return "?";
}

at::Tensor apply_colormap(const at::Tensor& values, Colormap colormap, double lo, double hi) {
  SPARSESCOPE_CHECK(values.defined() && values.dim() == 2 && at::isFloatingType(values.scalar_type()),
                    "apply_colormap: expected floating `values` [h, w], got ",
                    values.defined() ? values.sizes() : at::IntArrayRef{}, " of ",
                    values.defined() ? c10::toString(values.scalar_type()) : "no dtype");
  SPARSESCOPE_CHECK(std::isfinite(lo) && std::isfinite(hi), "apply_colormap: range [", lo, ", ", hi,
                    "] must be finite");
  // matplotlib's indexing: floor(x * 256) clipped to [0, 255]; an empty range maps everything to
  // its low end (as Normalize does when vmin == vmax), and so does NaN.
  const double span = hi - lo;
  at::Tensor x = values.to(at::kDouble).cpu();
  x = span > 0 ? (x - lo) / span : at::zeros_like(x);
  const at::Tensor index = (x.nan_to_num(0.0) * 256).floor().clamp(0, 255).to(at::kLong);
  return lookup_table(colormap).index_select(0, index.flatten()).view({values.size(0), values.size(1), 3});
}

at::Tensor blend(const at::Tensor& image, const at::Tensor& overlay, double alpha) {
  auto expect_rgb = [](const at::Tensor& t, const char* name) {
    SPARSESCOPE_CHECK(t.defined() && t.dim() == 3 && t.size(2) == 3 && t.scalar_type() == at::kByte,
                      "blend: expected uint8 `", name, "` [h, w, 3], got ", t.defined() ? t.sizes() : at::IntArrayRef{},
                      " of ", t.defined() ? c10::toString(t.scalar_type()) : "no dtype");
  };
  expect_rgb(image, "image");
  expect_rgb(overlay, "overlay");
  SPARSESCOPE_CHECK(image.sizes() == overlay.sizes(), "blend: `image` ", image.sizes(), " and `overlay` ",
                    overlay.sizes(), " differ in size");
  SPARSESCOPE_CHECK(alpha >= 0 && alpha <= 1, "blend: alpha ", alpha, " is outside [0, 1]");
  const at::Tensor mixed = image.cpu().to(at::kFloat) * (1 - alpha) + overlay.cpu().to(at::kFloat) * alpha;
  return mixed.round().clamp(0, 255).to(at::kByte);
}

}  // namespace sparsescope::vision
