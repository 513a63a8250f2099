#pragma once
// PSNR and SSIM of a super-resolution model on an SR dataset, as BasicSR's SRModel validation
// measures them: each SR output saved as 8 bits (tensor2img: clamped to [0, 1], times 255,
// rounded), then sr_metrics.h on Y with crop_border = the scale.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <functional>
#include <string>
#include <vector>

#include "sparsescope/vision/sr_data.h"

namespace sparsescope::vision {

struct SrImageScore {
  std::string name;
  double psnr = 0;
  double ssim = 0;
};

struct SrScores {
  double psnr = 0;  ///< means over the images
  double ssim = 0;
  std::vector<SrImageScore> images;
};

/// Maps an LR batch (float32 [1, 3, h, w] in [0, 1] on the evaluation device) to its SR.
using Upscaler = std::function<at::Tensor(const at::Tensor& lr)>;

/// An SR output as BasicSR's tensor2img saves it: [3, H, W] or [1, 3, H, W] -> uint8 [3, H, W] on the CPU.
at::Tensor sr_to_8bit(const at::Tensor& sr);

/// Scores `upscale` on every pair of `data` (one image at a time, under no_grad). Throws
/// sparsescope::Error naming the image whose SR does not have its HR's size.
SrScores evaluate_sr(const SrDataset& data, const Upscaler& upscale, at::Device device, bool y_channel = true);

/// MATLAB's bicubic upscaling by `scale` (the tables' "Bicubic" row).
Upscaler bicubic_upscaler(int64_t scale);

}  // namespace sparsescope::vision
