#include <cmath>

#include "sparsescope/vision/lr_schedule.h"

namespace sparsescope::vision {

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) {
    return warmup_lr + (base_lr - warmup_lr) * static_cast<double>(step) / static_cast<double>(warmup_steps);
  }
  if (!milestones.empty()) {
    double lr = base_lr;
    for (const double m : milestones) {
      if (static_cast<double>(step) >= m * static_cast<double>(total_steps)) lr *= gamma;
    }
    return lr;
  }
  if (step >= total_steps) return min_lr;
  const double t = static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
  return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(M_PI * t));
}

}  // namespace sparsescope::vision
