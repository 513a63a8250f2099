#include <torch/optim/adamw.h>

#include "sparsescope/vision/train_optim.h"

namespace sparsescope::vision {

bool uses_weight_decay(const std::string& name, const at::Tensor& param) {
  static const std::string kBias = ".bias";
  if (param.dim() <= 1) return false;
  if (name.size() >= kBias.size() && name.compare(name.size() - kBias.size(), kBias.size(), kBias) == 0) return false;
  return name != "pos_embed" && name != "cls_token" && name != "dist_token";
}

std::vector<torch::optim::OptimizerParamGroup> weight_decay_groups(const torch::nn::Module& module, double lr,
                                                                   double weight_decay, const DecayRule& decays,
                                                                   std::tuple<double, double> betas) {
  std::vector<at::Tensor> decay, no_decay;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    (decays(item.key(), item.value()) ? decay : no_decay).push_back(item.value());
  }
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr).weight_decay(wd).betas(betas));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  return groups;
}

}  // namespace sparsescope::vision
