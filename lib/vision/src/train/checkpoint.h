#pragma once
// The tensors of a training checkpoint: the module's float32 parameters under their names, each
// parameter's optimizer state under "optimizer/<name>/{step,exp_avg,exp_avg_sq}" (AdamW) or
// "optimizer/<name>/mu" (LARS) and the float16 loss scale under "grad_scaler/{scale,growth_tracker}".
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <string>

#include "grad_scaler.h"
#include "sparsescope/vision/safetensors.h"

namespace sparsescope::vision::detail {

/// `optimizer` is a torch::optim::AdamW or a detail::Lars.
NamedTensors checkpoint_tensors(torch::nn::Module& model, torch::optim::Optimizer& optimizer, GradScaler* scaler);

/// Loads what checkpoint_tensors saved into `model`, `optimizer` (whose parameters must be the
/// model's) and `scaler`. Throws sparsescope::Error naming `path` and every missing, unexpected or
/// mis-shaped tensor.
void restore_checkpoint(const NamedTensors& tensors, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                        GradScaler* scaler, const std::string& path);

}  // namespace sparsescope::vision::detail
