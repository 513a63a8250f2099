#pragma once
// Super-resolution data: pairs of an 8-bit HR image and its LR, from the benchmark sets as they are
// shipped (SelfExSR's `<stem>_HR.png` beside `<stem>_LR.png`) or made from HR photos with MATLAB's
// bicubic (matlab_resize.h), as DIV2K's and the benchmarks' LR images were made.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sparsescope::vision {

struct SrPair {
  std::string name;  ///< the HR file
  at::Tensor hr;     ///< uint8 [3, s H, s W], CPU
  at::Tensor lr;     ///< uint8 [3, H, W], CPU
};

struct SrDataset {
  std::string source;  ///< the folder
  int64_t scale = 4;
  bool lr_files = false;  ///< the LR images were read (true) or made here from the HR (false)
  std::vector<SrPair> pairs;
  std::vector<std::pair<std::string, std::string>> failures;  ///< skipped files: (path, reason)
};

/// The LR of an 8-bit HR image [3, H, W] whose sides are multiples of `scale`, as the benchmarks'
/// LR files are made: MATLAB's antialiased bicubic at 1 / scale, rounded to 8 bits.
at::Tensor bicubic_lr(const at::Tensor& hr, int64_t scale);

/// The SR pairs of `dir` at `scale`. A benchmark set as SelfExSR ships it (`dir` or
/// `dir/image_SRF_<scale>` holding `<stem>_HR.<ext>` and `<stem>_LR.<ext>`) gives its pairs, the HR
/// of each `scale` times its LR; any other folder of images (recursively) is HR only: each image
/// cropped to multiples of `scale` at its bottom and right (BasicSR's mod_crop) and its LR made
/// with bicubic_lr. Pairs whose LR is smaller than `min_lr_size` on a side, and unreadable files,
/// are skipped and listed in `failures`; `limit` > 0 keeps the first `limit` pairs. Throws
/// sparsescope::Error naming `dir` when it is missing, or holds no usable pair.
SrDataset load_sr_dataset(const std::string& dir, int64_t scale, int64_t limit = 0, int64_t min_lr_size = 1);

}  // namespace sparsescope::vision
