#include "sparsescope/vision/vit_input.h"

#include <ATen/ATen.h>

#include <cmath>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

Image to_gray(const Image& image) {
  Image gray = image;
  for (std::size_t i = 0; i + 2 < gray.pixels.size(); i += 3) {
    std::uint8_t* p = gray.pixels.data() + i;
    // Pillow's Convert.c: L24(rgb) = r * 19595 + g * 38470 + b * 7471 + 0x8000, then >> 16.
    const auto l = static_cast<std::uint8_t>((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
    p[0] = p[1] = p[2] = l;
  }
  return gray;
}

at::Tensor vit_pixels(const Image& image, const ViTConfig& config) {
  SPARSESCOPE_CHECK(config.in_chans == 1 || config.in_chans == 3, config.name, ": images can feed models of 1 or 3 ",
                    "input channels, this one takes ", config.in_chans);
  SPARSESCOPE_CHECK(config.eval.img_size == config.img_size, config.name, ": eval transform size ",
                    config.eval.img_size, " differs from the model's image size ", config.img_size);
  const Image seen = eval_geometry(config.in_chans == 1 ? to_gray(image) : image, config.eval);
  const at::Tensor chw = image_to_tensor(seen).permute({2, 0, 1});  // [3, S, S]
  return (config.in_chans == 1 ? chw.narrow(0, 0, 1) : chw).contiguous();
}

at::Tensor normalize_pixels(const at::Tensor& pixels, const EvalTransform& transform) {
  SPARSESCOPE_CHECK(pixels.dim() >= 3 && pixels.scalar_type() == at::kByte,
                    "normalize_pixels: expected uint8 pixels [..., C, H, W], got ", pixels.scalar_type(), " ",
                    pixels.sizes());
  return normalize_unit_pixels(pixels.to(at::kFloat).div(255), transform);
}

at::Tensor normalize_unit_pixels(const at::Tensor& pixels, const EvalTransform& transform) {
  SPARSESCOPE_CHECK(pixels.dim() >= 3 && at::isFloatingType(pixels.scalar_type()),
                    "normalize_unit_pixels: expected float pixels [..., C, H, W], got ", pixels.scalar_type(), " ",
                    pixels.sizes());
  const int64_t channels = pixels.size(-3);
  SPARSESCOPE_CHECK(channels == 1 || channels == 3, "normalize_pixels: expected 1 or 3 channels, got ", channels);
  for (int c = 0; c < channels; ++c) {
    SPARSESCOPE_CHECK(transform.std[c] != 0.0f && std::isfinite(transform.std[c]), "normalize: std[", c,
                      "] must be finite and non-zero, got ", transform.std[c]);
  }
  const auto options = at::TensorOptions().dtype(at::kFloat).device(pixels.device());
  const at::Tensor m = at::tensor(at::ArrayRef<float>(transform.mean.data(), channels)).to(options).view({channels, 1, 1});
  const at::Tensor s = at::tensor(at::ArrayRef<float>(transform.std.data(), channels)).to(options).view({channels, 1, 1});
  return pixels.to(at::kFloat).sub(m).div_(s);
}

at::Tensor vit_input(const Image& image, const ViTConfig& config) {
  return normalize_pixels(vit_pixels(image, config), config.eval);
}

}  // namespace sparsescope::vision
