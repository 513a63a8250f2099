#pragma once
// Dynamic loss scaling for float16 training: torch.amp.GradScaler's algorithm through the same
// ATen kernels (_amp_foreach_non_finite_check_and_unscale_, _amp_update_scale_).
#include <ATen/core/Tensor.h>

#include <vector>

namespace sparsescope::vision::detail {

class GradScaler {
 public:
  explicit GradScaler(at::Device device, double init_scale = 65536.0);

  /// loss * scale, to backpropagate instead of the loss.
  at::Tensor scale(const at::Tensor& loss) const;
  /// Divides the gradients of `params` by the scale in place and notes whether any is inf/NaN.
  void unscale(const std::vector<at::Tensor>& params);
  /// Whether the gradients unscaled last were all finite, i.e. the step may be taken (waits for the device).
  bool gradients_finite() const;
  /// Halves the scale after a skipped step, doubles it after 2000 clean ones in a row.
  void update();

  at::Tensor& scale_tensor() { return scale_; }              ///< float32 [1], for checkpoints
  at::Tensor& growth_tracker() { return growth_tracker_; }   ///< int32 [1], for checkpoints
  /// float32 [1] on the device: 1 when the last unscaled gradients held an inf/NaN, else 0.
  const at::Tensor& found_inf() const { return found_inf_; }

 private:
  at::Tensor scale_, growth_tracker_, found_inf_;
};

}  // namespace sparsescope::vision::detail
