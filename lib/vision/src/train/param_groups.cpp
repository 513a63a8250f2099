#include <torch/optim/adamw.h>

#include <cmath>
#include <map>
#include <utility>

#include "lars.h"
#include "sparsescope/vision/train_optim.h"

namespace sparsescope::vision {

bool uses_weight_decay(const std::string& name, const at::Tensor& param) {
  static const std::string kBias = ".bias";
  if (param.dim() <= 1) return false;
  if (name.size() >= kBias.size() && name.compare(name.size() - kBias.size(), kBias.size(), kBias) == 0) return false;
  return name != "pos_embed" && name != "cls_token" && name != "dist_token";
}

ParamGroups weight_decay_groups(const torch::nn::Module& module, double lr, double weight_decay,
                                const DecayRule& decays, std::tuple<double, double> betas) {
  std::vector<at::Tensor> decay, no_decay;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    (decays(item.key(), item.value()) ? decay : no_decay).push_back(item.value());
  }
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr).weight_decay(wd).betas(betas));
  };
  ParamGroups groups;
  groups.groups.emplace_back(decay, options(weight_decay));
  groups.groups.emplace_back(no_decay, options(0.0));
  groups.lr_scales = {1.0, 1.0};
  return groups;
}

int64_t vit_layer_id(const std::string& name, int64_t depth) {
  auto starts_with = [&](const char* prefix) { return name.rfind(prefix, 0) == 0; };
  if (name == "cls_token" || name == "pos_embed" || starts_with("patch_embed")) return 0;
  if (starts_with("blocks.")) return std::stoll(name.substr(7, name.find('.', 7) - 7)) + 1;
  return depth + 1;
}

ParamGroups lars_groups(const torch::nn::Module& module, double lr, double weight_decay) {
  std::vector<at::Tensor> params;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (item.value().requires_grad()) params.push_back(item.value());
  }
  ParamGroups groups;
  groups.groups.emplace_back(params, std::make_unique<detail::LarsOptions>(detail::LarsOptions(lr).weight_decay(weight_decay)));
  groups.lr_scales = {1.0};
  groups.optimizer = ParamGroups::Optimizer::Lars;
  return groups;
}

ParamGroups layer_decay_groups(const torch::nn::Module& module, int64_t depth, double lr, double weight_decay,
                               double layer_decay, std::tuple<double, double> betas) {
  std::map<std::pair<int64_t, bool>, size_t> index;  // (layer, decays) -> group
  std::vector<std::vector<at::Tensor>> params;
  std::vector<std::pair<int64_t, bool>> keys;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    const std::pair<int64_t, bool> key{vit_layer_id(item.key(), depth), uses_weight_decay(item.key(), item.value())};
    const auto [it, fresh] = index.emplace(key, params.size());
    if (fresh) {
      params.emplace_back();
      keys.push_back(key);
    }
    params[it->second].push_back(item.value());
  }
  ParamGroups groups;
  for (size_t g = 0; g < params.size(); ++g) {
    const auto [layer, decays] = keys[g];
    auto options = std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(lr).weight_decay(decays ? weight_decay : 0.0).betas(betas));
    groups.groups.emplace_back(params[g], std::move(options));
    groups.lr_scales.push_back(std::pow(layer_decay, static_cast<double>(depth + 1 - layer)));
  }
  return groups;
}

}  // namespace sparsescope::vision
