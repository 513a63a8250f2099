#include "grad_scaler.h"

#include <ATen/ATen.h>

namespace sparsescope::vision::detail {

namespace {
// torch.amp.GradScaler's defaults.
constexpr double kGrowthFactor = 2.0, kBackoffFactor = 0.5;
constexpr int64_t kGrowthInterval = 2000;
}  // namespace

GradScaler::GradScaler(at::Device device, double init_scale)
    : scale_(at::full({1}, init_scale, at::TensorOptions().dtype(at::kFloat).device(device))),
      growth_tracker_(at::zeros({1}, at::TensorOptions().dtype(at::kInt).device(device))),
      found_inf_(at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(device))) {}

at::Tensor GradScaler::scale(const at::Tensor& loss) const { return loss * scale_.to(loss.scalar_type()); }

void GradScaler::unscale(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  found_inf_.zero_();
  const at::Tensor inv_scale = scale_.to(at::kDouble).reciprocal().to(at::kFloat);  // as GradScaler
  at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf_, inv_scale);
}

bool GradScaler::gradients_finite() const { return found_inf_.item<float>() == 0.0f; }

void GradScaler::update() {
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, kGrowthFactor, kBackoffFactor, kGrowthInterval);
}

}  // namespace sparsescope::vision::detail
