#include <ATen/ATen.h>

#include "sparsescope/vision/train_optim.h"

namespace sparsescope::vision {

at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  std::vector<at::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return {};
  const at::Tensor total = at::stack(at::_foreach_norm(grads, 2)).norm(2);  // 0-dim, on the device
  // Multiplying by a clamped coefficient (rather than branching on the norm) keeps the host from
  // waiting for the device, as PyTorch's clip_grad_norm_ does.
  const at::Tensor coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  at::_foreach_mul_(grads, coef);
  return total;
}

}  // namespace sparsescope::vision
