#pragma once
// sparsescope eval --task sr: PSNR and SSIM of super-resolution weights on a benchmark set.
#include <cstdint>
#include <string>

namespace sparsescope::cli {

struct SrEvalRequest {
  std::string weights;
  std::string sr_images;  ///< instead of weights: a folder of SR images named as the HR files
  std::string model;    ///< an SR configuration (load_sr_model); empty: the weights' card
  std::string dataset;  ///< a benchmark set (Set5 as shipped) or a folder of HR images
  int64_t scale = 0;    ///< 0: the model's; else it must be the model's
  int64_t limit = 0;
  std::string device = "cpu";
  std::string dtype = "fp32";
  bool json = false;
};

/// Prints the PSNR/SSIM (Y, crop = scale) of the model's SR, or of SR images made elsewhere (another
/// method's code), beside bicubic's; returns the exit status (1 when images were skipped).
int run_sr_eval(const SrEvalRequest& request);

}  // namespace sparsescope::cli
