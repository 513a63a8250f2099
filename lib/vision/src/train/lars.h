#pragma once
// LARS (You et al. 2017) as MAE's linear probe runs it (util/lars.py, from MoCo v3): SGD with
// momentum whose update of every weight matrix is weight-decayed and rescaled by the trust ratio
// trust_coefficient * |p| / |update|; biases and other 1-D parameters get the plain gradient.
#include <torch/optim/optimizer.h>

namespace sparsescope::vision::detail {

struct LarsOptions : public torch::optim::OptimizerCloneableOptions<LarsOptions> {
  LarsOptions(double lr = 0) : lr_(lr) {}  // NOLINT(google-explicit-constructor): as torch's options
  TORCH_ARG(double, lr) = 0;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(double, momentum) = 0.9;
  TORCH_ARG(double, trust_coefficient) = 0.001;

 public:
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

struct LarsParamState : public torch::optim::OptimizerCloneableParamState<LarsParamState> {
  TORCH_ARG(at::Tensor, mu);  // the momentum buffer
};

class Lars : public torch::optim::Optimizer {
 public:
  Lars(const std::vector<torch::optim::OptimizerParamGroup>& groups, LarsOptions defaults = {})
      : Optimizer(groups, std::make_unique<LarsOptions>(defaults)) {}
  /// mu = momentum * mu + d; p -= lr * mu, where d = (g + wd p) * trust_coefficient |p| / |g + wd p|
  /// for parameters of more than one dimension (the ratio 1 where a norm is 0) and d = g otherwise.
  at::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace sparsescope::vision::detail
