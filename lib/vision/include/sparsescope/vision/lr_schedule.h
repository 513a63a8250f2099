#pragma once
// The learning-rate schedule of training (LibTorch-free).
#include <cstdint>
#include <vector>

namespace sparsescope::vision {

/// The learning rate of optimizer step `step` (0-based): linear warmup from warmup_lr towards
/// base_lr over warmup_steps, then either
/// - a half cosine from base_lr down to min_lr at total_steps (timm's CosineLRScheduler with
///   warmup_prefix, stepped per update), min_lr from then on; or, with `milestones`,
/// - base_lr times gamma for every milestone passed (torch's MultiStepLR as BasicSR steps it per
///   iteration), each milestone a fraction of total_steps (step >= fraction * total_steps).
struct LrSchedule {
  double base_lr = 1e-3;
  double min_lr = 1e-5;
  double warmup_lr = 1e-6;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  std::vector<double> milestones;  ///< increasing fractions in (0, 1); empty: cosine
  double gamma = 0.5;

  double at(int64_t step) const;
};

}  // namespace sparsescope::vision
