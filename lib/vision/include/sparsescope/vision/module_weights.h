#pragma once
// Strict assignment of named checkpoint tensors to a module's parameters and buffers: every
// model's loader ends here, so all of them report problems the same way.
#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

namespace sparsescope::vision {

/// Copies each tensor into the parameter or buffer of the same name (converting dtype and
/// device). Missing, unexpected and mis-shaped names are collected and thrown together as one
/// sparsescope::Error that names `source`; nothing is modified in that case.
void assign_weights(torch::nn::Module& module, const std::vector<std::pair<std::string, at::Tensor>>& weights,
                    const std::string& source);

}  // namespace sparsescope::vision
