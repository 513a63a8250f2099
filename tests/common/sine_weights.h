#pragma once
// Parity fixtures without stored weights: both sides fill every parameter with the same formula,
// w = 0.05 sin(0.37 i + o) over its flat index i, o = the parameter name's bytes summed mod 97, plus
// 1 where `plus_one(name)` says (normalisation weights, temperatures: around their initial 1).
// The Python side: scripts/fixtures/sine_weights.py.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/module.h>

#include <functional>
#include <string>

#include "sparsescope/vision/safetensors.h"

namespace sparsescope::test {

inline void sine_weights(torch::nn::Module& module, const std::function<bool(const std::string&)>& plus_one) {
  at::NoGradGuard no_grad;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    int offset = 0;
    for (const unsigned char ch : item.key()) offset += ch;
    offset %= 97;
    const at::Tensor i = at::arange(item.value().numel(), at::kDouble);
    item.value().copy_((0.05 * at::sin(0.37 * i + offset)).view(item.value().sizes()));
    if (plus_one(item.key())) item.value().add_(1.0);
  }
}

/// The tensor `name` of a fixture file; fails the test (and returns an undefined tensor) without it.
inline at::Tensor fixture_tensor(const vision::SafetensorsFile& file, const std::string& name) {
  for (const auto& [n, t] : file.tensors) {
    if (n == name) return t;
  }
  ADD_FAILURE() << "the fixture has no tensor '" << name << "'";
  return {};
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace sparsescope::test
