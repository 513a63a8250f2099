#include "sparsescope/vision/sr_eval.h"

#include <ATen/ATen.h>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/matlab_resize.h"
#include "sparsescope/vision/sr_metrics.h"

namespace sparsescope::vision {

at::Tensor sr_to_8bit(const at::Tensor& sr) {
  const at::Tensor image = sr.dim() == 4 ? sr.squeeze(0) : sr;
  SPARSESCOPE_CHECK(image.dim() == 3 && image.size(0) == 3, "sr_to_8bit: expected [3, H, W], got ", sr.sizes());
  return image.detach().to(at::kCPU, at::kFloat).clamp(0, 1).mul(255).round().to(at::kByte);
}

SrScores evaluate_sr(const SrDataset& data, const Upscaler& upscale, at::Device device, bool y_channel) {
  const at::NoGradGuard no_grad;
  const SrMetricOptions options{static_cast<int>(data.scale), y_channel};
  SrScores scores;
  for (const SrPair& pair : data.pairs) {
    const at::Tensor lr = pair.lr.unsqueeze(0).to(device, at::kFloat).div(255);
    const at::Tensor sr = sr_to_8bit(upscale(lr)).to(at::kDouble);
    SPARSESCOPE_CHECK(sr.sizes() == pair.hr.sizes(), "'", pair.name, "': the SR output is ", sr.sizes(),
                      ", the HR image ", pair.hr.sizes());
    const at::Tensor hr = pair.hr.to(at::kDouble);
    scores.images.push_back({pair.name, psnr(sr, hr, options), ssim(sr, hr, options)});
    scores.psnr += scores.images.back().psnr;
    scores.ssim += scores.images.back().ssim;
  }
  if (!scores.images.empty()) {
    scores.psnr /= static_cast<double>(scores.images.size());
    scores.ssim /= static_cast<double>(scores.images.size());
  }
  return scores;
}

Upscaler bicubic_upscaler(int64_t scale) {
  return [scale](const at::Tensor& lr) { return matlab_imresize(lr, static_cast<double>(scale)); };
}

}  // namespace sparsescope::vision
