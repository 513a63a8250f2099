#pragma once
// An exponential moving average of a module (BasicSR's net_g_ema, MAE-LUT's EMA teacher): a second
// module of the same structure whose floating parameters and buffers follow
// ema = decay * ema + (1 - decay) * model after each optimizer step (other buffers are copied).
#include <torch/nn/module.h>

#include <string>

#include "sparsescope/vision/safetensors.h"

namespace sparsescope::vision {

/// Copies every parameter and buffer of `from` into `to` (same names and shapes).
void copy_module_state(torch::nn::Module& to, const torch::nn::Module& from);

/// One EMA update of `ema` towards `model`.
void ema_update(torch::nn::Module& ema, const torch::nn::Module& model, double decay);

/// The parameters and buffers of `module` named "<prefix><name>" (for a checkpoint's task state).
NamedTensors prefixed_state(const torch::nn::Module& module, const std::string& prefix);

/// Restores `module` from the "<prefix><name>" entries of `state`; throws sparsescope::Error naming
/// `source` and the missing entry.
void load_prefixed_state(torch::nn::Module& module, const NamedTensors& state, const std::string& prefix,
                         const std::string& source);

}  // namespace sparsescope::vision
