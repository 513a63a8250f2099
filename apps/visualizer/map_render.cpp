#include "map_render.h"

#include <ATen/ATen.h>

#include <utility>

#include "image_convert.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_maps.h"

namespace sparsescope::viewer {

namespace {

// The value range a map is drawn over: [min(map), max(map)], or [v, v + 1] for a flat map of v.
std::pair<double, double> map_range(const at::Tensor& map) {
  if (map.numel() == 0) return {0.0, 1.0};
  const auto [lo, hi] = at::aminmax(map);
  const double l = lo.item<double>(), h = hi.item<double>();
  return {l, h > l ? h : l + 1.0};
}

}  // namespace

RenderedMap render_overlay(const at::Tensor& image, const at::Tensor& map, vision::Colormap colormap,
                           double opacity) {
  SPARSESCOPE_CHECK(map.dim() == 2, "expected a map [h, w], got ", map.sizes());
  SPARSESCOPE_CHECK(image.dim() == 3 && image.size(2) == 3, "expected an image [H, W, 3], got ", image.sizes());
  const auto [lo, hi] = map_range(map);
  const at::Tensor up = vision::upsample_maps(map, image.size(0), image.size(1));  // [H, W]
  const at::Tensor colours = vision::apply_colormap(up, colormap, lo, hi);         // [H, W, 3]
  return {to_qimage(vision::blend(image, colours, opacity)), lo, hi};
}

QImage render_colorbar(vision::Colormap colormap, int width, int height) {
  SPARSESCOPE_CHECK(width > 0 && height > 0, "colour bar size must be positive, got ", width, " x ", height);
  // [height, 1]: 1 at the top row, 0 at the bottom.
  const at::Tensor ramp = at::linspace(1.0, 0.0, height, at::kFloat).unsqueeze(1);
  const at::Tensor colours = vision::apply_colormap(ramp, colormap, 0.0, 1.0).expand({height, width, 3});
  return to_qimage(colours);
}

}  // namespace sparsescope::viewer
