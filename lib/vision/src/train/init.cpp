#include "init.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <cmath>

#include "sparsescope/vision/attention_policy.h"

namespace sparsescope::vision::detail {

namespace {

// timm's trunc_normal_(std=0.02) truncates at the absolute bounds +-2, i.e. at 100 sigma: a plain
// normal draw clamped there is the same distribution.
void trunc_normal(at::Tensor& t, double std, at::Generator& gen) { t.normal_(0.0, std, gen).clamp_(-2.0, 2.0); }

}  // namespace

void init_for_training(VisionTransformer& model, at::Generator& gen) {
  c10::NoGradGuard no_grad;
  for (const auto& item : model->named_modules()) {
    torch::nn::Module& module = *item.value();
    if (auto* linear = module.as<torch::nn::Linear>()) {
      trunc_normal(linear->weight, 0.02, gen);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* norm = module.as<torch::nn::LayerNorm>()) {
      norm->weight.fill_(1.0);
      norm->bias.zero_();
    } else if (auto* conv = module.as<torch::nn::Conv2d>()) {
      // kaiming_uniform_(a=sqrt(5)) is uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias the same.
      const double bound = 1.0 / std::sqrt(static_cast<double>(conv->weight[0].numel()));
      conv->weight.uniform_(-bound, bound, gen);
      if (conv->bias.defined()) conv->bias.uniform_(-bound, bound, gen);
    }
  }
  for (const auto& module : model->modules(/*include_self=*/false)) {  // what only the policies know
    if (auto* policy = module->as<AttentionPolicyImpl>()) policy->init_parameters(gen);
  }
  for (auto& item : model->named_parameters(/*recurse=*/false)) {
    at::Tensor& p = item.value();
    if (item.key() == "cls_token") {
      p.normal_(0.0, 1e-6, gen);
    } else {
      trunc_normal(p, 0.02, gen);  // pos_embed, dist_token
    }
  }
}

}  // namespace sparsescope::vision::detail
