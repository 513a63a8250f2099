#include "sparsescope/vision/sr_metrics.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

void check_rgb(const at::Tensor& t, const char* what) {
  SPARSESCOPE_CHECK(t.dim() == 3 && t.size(0) == 3, "sr metrics: ", what, " must be [3, H, W], got ", t.sizes());
}

// The measured planes: both images cropped, then Y or RGB, in float64 on [0, 255].
std::pair<at::Tensor, at::Tensor> planes(const at::Tensor& image, const at::Tensor& reference,
                                         const SrMetricOptions& options) {
  check_rgb(image, "the image");
  check_rgb(reference, "the reference");
  SPARSESCOPE_CHECK(image.sizes() == reference.sizes(), "sr metrics: the image ", image.sizes(),
                    " and the reference ", reference.sizes(), " differ in shape");
  const int64_t c = options.crop_border;
  SPARSESCOPE_CHECK(c >= 0 && 2 * c < image.size(1) && 2 * c < image.size(2), "sr metrics: crop_border ", c,
                    " leaves nothing of ", image.sizes());
  auto crop = [&](const at::Tensor& t) {
    const at::Tensor x = t.to(at::kDouble).slice(1, c, t.size(1) - c).slice(2, c, t.size(2) - c);
    return options.y_channel ? rgb_to_y(x) : x;
  };
  return {crop(image), crop(reference)};
}

// cv2.filter2D with an 11 x 11 Gaussian (sigma 1.5), valid region only, per plane of [C, H, W].
at::Tensor gaussian_filter(const at::Tensor& x) {
  const at::Tensor g = at::arange(11, at::kDouble).sub(5).pow(2).div(-2 * 1.5 * 1.5).exp();
  const at::Tensor k = g / g.sum();
  const at::Tensor window = at::outer(k, k).view({1, 1, 11, 11}).to(x.device());
  return at::conv2d(x.unsqueeze(1), window).squeeze(1);
}

}  // namespace

at::Tensor rgb_to_y(const at::Tensor& rgb) {
  check_rgb(rgb, "the image");
  // BasicSR: float32 RGB / 255, the weighted sum in float64, Y / 255 stored as float32, times 255 in float32.
  const at::Tensor x = rgb.to(at::kFloat).div(255).to(at::kDouble);
  const at::Tensor y = (x[0] * 65.481 + x[1] * 128.553 + x[2] * 24.966).add(16).div(255).to(at::kFloat);
  return y.mul(255).to(at::kDouble).unsqueeze(0);
}

double psnr(const at::Tensor& image, const at::Tensor& reference, SrMetricOptions options) {
  const auto [a, b] = planes(image, reference, options);
  const double mse = (a - b).pow(2).mean().item<double>();
  if (mse == 0) return std::numeric_limits<double>::infinity();
  return 10 * std::log10(255.0 * 255.0 / mse);
}

double ssim(const at::Tensor& image, const at::Tensor& reference, SrMetricOptions options) {
  const auto [a, b] = planes(image, reference, options);
  SPARSESCOPE_CHECK(a.size(1) >= 11 && a.size(2) >= 11, "ssim: ", a.sizes(), " is smaller than the 11 x 11 window");
  const double c1 = std::pow(0.01 * 255, 2), c2 = std::pow(0.03 * 255, 2);
  const at::Tensor mu1 = gaussian_filter(a), mu2 = gaussian_filter(b);
  const at::Tensor s11 = gaussian_filter(a * a) - mu1 * mu1;
  const at::Tensor s22 = gaussian_filter(b * b) - mu2 * mu2;
  const at::Tensor s12 = gaussian_filter(a * b) - mu1 * mu2;
  const at::Tensor map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 * mu1 + mu2 * mu2 + c1) * (s11 + s22 + c2));
  return map.mean({1, 2}).mean().item<double>();
}

}  // namespace sparsescope::vision
