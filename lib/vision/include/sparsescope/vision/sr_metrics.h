#pragma once
// The PSNR and SSIM of the SR papers as BasicSR computes them (basicsr/metrics/psnr_ssim.py):
// 8-bit images, `crop_border` pixels removed on every side, optionally on the Y channel of
// ITU-R BT.601 YCbCr (studio range, Y in [16, 235]).
#include <ATen/core/Tensor.h>

namespace sparsescope::vision {

/// Y of BT.601 from RGB in [0, 255]: (65.481 R + 128.553 G + 24.966 B) / 255 + 16, rounded through
/// float32 as BasicSR's to_y_channel. [3, H, W] -> [1, H, W] (float64).
at::Tensor rgb_to_y(const at::Tensor& rgb);

struct SrMetricOptions {
  int crop_border = 0;   ///< pixels removed on each side before measuring (BasicSR: the scale)
  bool y_channel = true; ///< measure Y of YCbCr (the papers' tables) or all RGB channels
};

/// PSNR in dB of two [3, H, W] images with values in [0, 255] (rounded 8-bit values, as saved);
/// +inf for identical images. Throws sparsescope::Error naming both shapes when they differ.
double psnr(const at::Tensor& image, const at::Tensor& reference, SrMetricOptions options = {});

/// SSIM (Wang et al. 2004) with an 11 x 11 Gaussian window of sigma 1.5 over the valid region,
/// c1 = (0.01 * 255)^2, c2 = (0.03 * 255)^2, averaged over the channels measured.
double ssim(const at::Tensor& image, const at::Tensor& reference, SrMetricOptions options = {});

}  // namespace sparsescope::vision
