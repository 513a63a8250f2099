#pragma once
// `with torch.autocast(device_type, dtype, cache_enabled=cache):` as an RAII guard, for the forward
// passes of training and evaluation under BF16/FP16 (a no-op for FP32). A CUDA graph's capture runs
// it without the cache of low-precision weight copies, as torch.cuda.graphs requires.
#include <ATen/autocast_mode.h>

#include "sparsescope/vision/precision.h"

namespace sparsescope::vision::detail {

class AutocastGuard {
 public:
  AutocastGuard(at::DeviceType device, Precision precision, bool cache = true)
      : device_(device), active_(precision != Precision::FP32) {
    if (!active_) return;
    // The same steps, in the same order, as torch.amp.autocast.__enter__.
    prev_cache_enabled_ = at::autocast::is_autocast_cache_enabled();
    prev_enabled_ = at::autocast::is_autocast_enabled(device_);
    prev_dtype_ = at::autocast::get_autocast_dtype(device_);
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::set_autocast_dtype(device_, precision == Precision::BF16 ? at::kBFloat16 : at::kHalf);
    at::autocast::increment_nesting();
    at::autocast::set_autocast_cache_enabled(cache);
  }
  ~AutocastGuard() {
    if (!active_) return;
    // Leaving the outermost region drops the cached low-precision copies of the weights, which the
    // optimizer is about to change.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_, prev_enabled_);
    at::autocast::set_autocast_dtype(device_, prev_dtype_);
    at::autocast::set_autocast_cache_enabled(prev_cache_enabled_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  at::DeviceType device_;
  bool active_;
  bool prev_cache_enabled_ = true;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kFloat;
};

}  // namespace sparsescope::vision::detail
