#include "checkpoint.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <map>
#include <torch/optim/adamw.h>

#include "sparsescope/vision/module_weights.h"
#include "lars.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision::detail {

namespace {
const std::string kOptimizer = "optimizer/";
const std::string kScaler = "grad_scaler/";

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
}  // namespace

NamedTensors checkpoint_tensors(torch::nn::Module& model, torch::optim::Optimizer& optimizer, GradScaler* scaler) {
  NamedTensors tensors;
  const auto params = model.named_parameters(/*recurse=*/true);
  for (const auto& item : params) tensors.emplace_back(item.key(), item.value().detach());
  for (const auto& item : model.named_buffers(/*recurse=*/true)) tensors.emplace_back(item.key(), item.value());
  auto& state = optimizer.state();
  for (const auto& item : params) {
    const auto it = state.find(item.value().unsafeGetTensorImpl());
    if (it == state.end()) continue;  // no step taken yet
    const std::string prefix = kOptimizer + item.key() + "/";
    if (const auto* lars = dynamic_cast<const LarsParamState*>(it->second.get())) {
      tensors.emplace_back(prefix + "mu", lars->mu());
      continue;
    }
    const auto& s = dynamic_cast<const torch::optim::AdamWParamState&>(*it->second);
    tensors.emplace_back(prefix + "step", at::scalar_tensor(s.step(), at::kLong));
    tensors.emplace_back(prefix + "exp_avg", s.exp_avg());
    tensors.emplace_back(prefix + "exp_avg_sq", s.exp_avg_sq());
  }
  if (scaler) {
    tensors.emplace_back(kScaler + "scale", scaler->scale_tensor());
    tensors.emplace_back(kScaler + "growth_tracker", scaler->growth_tracker());
  }
  return tensors;
}

void restore_checkpoint(const NamedTensors& tensors, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                        GradScaler* scaler, const std::string& path) {
  NamedTensors weights;
  std::map<std::string, at::Tensor> rest;
  for (const auto& [name, tensor] : tensors) {
    if (starts_with(name, kOptimizer) || starts_with(name, kScaler)) {
      rest.emplace(name, tensor);
    } else {
      weights.emplace_back(name, tensor);
    }
  }
  assign_weights(model, weights, path);

  auto take = [&](const std::string& name, const at::Tensor& like) {
    const auto it = rest.find(name);
    SPARSESCOPE_CHECK(it != rest.end(), "checkpoint '", path, "' lacks '", name, "'");
    SPARSESCOPE_CHECK(it->second.sizes() == like.sizes(), "checkpoint '", path, "': '", name, "' is ",
                      it->second.sizes(), ", expected ", like.sizes());
    at::Tensor value = it->second.to(like.device(), like.scalar_type()).clone();  // own memory, not the mapping
    rest.erase(it);
    return value;
  };
  c10::NoGradGuard no_grad;
  auto& state = optimizer.state();
  state.clear();
  const bool lars = dynamic_cast<Lars*>(&optimizer) != nullptr;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const at::Tensor& p = item.value();
    const std::string prefix = kOptimizer + item.key() + "/";
    if (lars) {
      if (!rest.count(prefix + "mu")) continue;  // saved before its first step
      auto s = std::make_unique<LarsParamState>();
      s->mu(take(prefix + "mu", p));
      state[p.unsafeGetTensorImpl()] = std::move(s);
      continue;
    }
    if (!rest.count(prefix + "step")) continue;  // saved before its first step
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(take(prefix + "step", at::scalar_tensor(0, at::kLong)).item<int64_t>());
    s->exp_avg(take(prefix + "exp_avg", p));
    s->exp_avg_sq(take(prefix + "exp_avg_sq", p));
    state[p.unsafeGetTensorImpl()] = std::move(s);
  }
  if (scaler) {
    scaler->scale_tensor().copy_(take(kScaler + "scale", scaler->scale_tensor()));
    scaler->growth_tracker().copy_(take(kScaler + "growth_tracker", scaler->growth_tracker()));
  }
  if (!rest.empty()) {
    std::string names;
    for (const auto& [name, tensor] : rest) names += (names.empty() ? "" : ", ") + name;
    SPARSESCOPE_FAIL("checkpoint '", path, "' has state this run does not use: ", names,
                     " (a float16 checkpoint resumed without --amp fp16, or the reverse?)");
  }
}

}  // namespace sparsescope::vision::detail
