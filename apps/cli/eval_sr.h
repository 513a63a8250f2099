#pragma once
// sparsescope eval --task sr: PSNR and SSIM of super-resolution weights on a benchmark set.
#include <cstdint>
#include <string>

namespace sparsescope::cli {

struct SrEvalRequest {
  std::string weights;
  std::string model;    ///< a dlgsanet_* configuration; empty: the weights' card
  std::string dataset;  ///< a benchmark set (Set5 as shipped) or a folder of HR images
  int64_t scale = 0;    ///< 0: the model's; else it must be the model's
  int64_t limit = 0;
  std::string device = "cpu";
  std::string dtype = "fp32";
  bool json = false;
};

/// Prints the model's and bicubic's PSNR/SSIM (Y, crop = scale); returns the exit status (1 when
/// images were skipped).
int run_sr_eval(const SrEvalRequest& request);

}  // namespace sparsescope::cli
