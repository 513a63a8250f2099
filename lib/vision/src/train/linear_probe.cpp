#include "sparsescope/vision/linear_probe.h"

#include <ATen/ATen.h>
#include <torch/optim/lbfgs.h>

#include "labelled_features.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

double top1(const at::Tensor& logits, const at::Tensor& labels) {
  return logits.argmax(1).eq(labels).to(at::kDouble).mean().item<double>();
}

}  // namespace

LinearProbeResult linear_probe(const at::Tensor& train_features, const at::Tensor& train_labels,
                               const at::Tensor& test_features, const at::Tensor& test_labels, int64_t num_classes,
                               const LinearProbeOptions& options) {
  detail::check_labelled_features("linear_probe", train_features, train_labels, test_features, test_labels);
  SPARSESCOPE_CHECK(num_classes >= 1, "linear_probe: num_classes ", num_classes, " must be positive");
  SPARSESCOPE_CHECK(options.l2 >= 0 && options.max_iterations >= 1, "linear_probe: l2 ", options.l2,
                    " must be >= 0 and max_iterations ", options.max_iterations, " >= 1");
  const auto device = train_features.device();
  const auto f64 = at::TensorOptions().dtype(at::kDouble).device(device);
  const at::Tensor train_y = train_labels.to(device, at::kLong);
  SPARSESCOPE_CHECK(train_y.min().item<int64_t>() >= 0 && train_y.max().item<int64_t>() < num_classes,
                    "linear_probe: training labels outside [0, ", num_classes, ")");

  LinearProbeResult r;
  const at::Tensor x = train_features.to(f64);
  r.mean = x.mean(0);
  r.inv_std = (x.var(0, /*unbiased=*/false) + 1e-6).rsqrt();
  const at::Tensor xs = (x - r.mean) * r.inv_std;

  const at::AutoGradMode grad_mode(true);
  at::Tensor weight = at::zeros({x.size(1), num_classes}, f64).requires_grad_();
  at::Tensor bias = at::zeros({num_classes}, f64).requires_grad_();
  const auto objective = [&] {
    return at::cross_entropy_loss(at::addmm(bias, xs, weight), train_y) + 0.5 * options.l2 * weight.square().sum();
  };
  torch::optim::LBFGS lbfgs({weight, bias}, torch::optim::LBFGSOptions(1.0)
                                                 .max_iter(options.max_iterations)
                                                 .max_eval(options.max_iterations * 5 / 4)
                                                 .history_size(20)
                                                 .tolerance_grad(1e-9)
                                                 .tolerance_change(1e-12)
                                                 .line_search_fn("strong_wolfe"));
  lbfgs.step([&] {
    lbfgs.zero_grad();
    at::Tensor loss = objective();
    loss.backward();
    return loss;
  });
  const auto& state = static_cast<const torch::optim::LBFGSParamState&>(*lbfgs.state().begin()->second);
  r.iterations = state.n_iter();

  const at::NoGradGuard no_grad;
  r.weight = weight.detach();
  r.bias = bias.detach();
  r.loss = objective().item<double>();
  const auto logits = [&](const at::Tensor& features) {
    return at::addmm(r.bias, (features.to(f64) - r.mean) * r.inv_std, r.weight);
  };
  r.train_top1 = top1(logits(train_features), train_y);
  r.test_top1 = top1(logits(test_features), test_labels.to(device, at::kLong));
  return r;
}

}  // namespace sparsescope::vision
