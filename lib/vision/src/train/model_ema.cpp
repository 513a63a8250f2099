#include "sparsescope/vision/model_ema.h"

#include <ATen/ATen.h>

#include <map>
#include <vector>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

void copy_module_state(torch::nn::Module& to, const torch::nn::Module& from) {
  const at::NoGradGuard no_grad;
  const auto params = from.named_parameters(true);
  for (auto& item : to.named_parameters(true)) item.value().copy_(params[item.key()]);
  const auto buffers = from.named_buffers(true);
  for (auto& item : to.named_buffers(true)) item.value().copy_(buffers[item.key()]);
}

void ema_update(torch::nn::Module& ema, const torch::nn::Module& model, double decay) {
  const at::NoGradGuard no_grad;
  std::vector<at::Tensor> averaged, current;  // the floating-point tensors: e = e * decay + (1 - decay) * m
  auto update = [&](at::Tensor& e, const at::Tensor& m) {
    if (at::isFloatingType(e.scalar_type())) {
      averaged.push_back(e);
      current.push_back(m);
    } else {
      e.copy_(m);
    }
  };
  const auto params = model.named_parameters(true);
  for (auto& item : ema.named_parameters(true)) update(item.value(), params[item.key()]);
  const auto buffers = model.named_buffers(true);
  for (auto& item : ema.named_buffers(true)) update(item.value(), buffers[item.key()]);
  // Multi-tensor kernels (as timm's ModelEmaV3): a few launches a step instead of four per tensor.
  at::_foreach_mul_(averaged, decay);
  at::_foreach_add_(averaged, current, 1.0 - decay);
}

NamedTensors prefixed_state(const torch::nn::Module& module, const std::string& prefix) {
  NamedTensors out;
  for (const auto& item : module.named_parameters(true)) out.emplace_back(prefix + item.key(), item.value());
  for (const auto& item : module.named_buffers(true)) out.emplace_back(prefix + item.key(), item.value());
  return out;
}

void load_prefixed_state(torch::nn::Module& module, const NamedTensors& state, const std::string& prefix,
                         const std::string& source) {
  const std::map<std::string, at::Tensor> saved(state.begin(), state.end());
  const at::NoGradGuard no_grad;
  auto restore = [&](const std::string& name, at::Tensor& into) {
    const auto it = saved.find(prefix + name);
    SPARSESCOPE_CHECK(it != saved.end(), "checkpoint '", source, "' has no entry '", prefix, name, "'");
    SPARSESCOPE_CHECK(it->second.sizes() == into.sizes(), "checkpoint '", source, "': entry '", prefix, name,
                      "' has shape ", it->second.sizes(), ", the model's is ", into.sizes());
    into.copy_(it->second);
  };
  for (auto& item : module.named_parameters(true)) restore(item.key(), item.value());
  for (auto& item : module.named_buffers(true)) restore(item.key(), item.value());
}

}  // namespace sparsescope::vision
