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
                                                                   double weight_decay) {
  std::vector<at::Tensor> decay, no_decay;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    (uses_weight_decay(item.key(), item.value()) ? decay : no_decay).push_back(item.value());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(lr).weight_decay(weight_decay)));
  groups.emplace_back(no_decay,
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr).weight_decay(0.0)));
  return groups;
}

}  // namespace sparsescope::vision
