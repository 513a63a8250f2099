#pragma once
// The tensors of a training checkpoint: the module's float32 parameters under their names, each
// parameter's AdamW state under "optimizer/<name>/{step,exp_avg,exp_avg_sq}" and the float16 loss
// scale under "grad_scaler/{scale,growth_tracker}".
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <string>

#include "grad_scaler.h"
#include "sparsescope/vision/safetensors.h"

namespace sparsescope::vision::detail {

NamedTensors checkpoint_tensors(torch::nn::Module& model, torch::optim::AdamW& optimizer, GradScaler* scaler);

/// Loads what checkpoint_tensors saved into `model`, `optimizer` (whose parameters must be the
/// model's) and `scaler`. Throws sparsescope::Error naming `path` and every missing, unexpected or
/// mis-shaped tensor.
void restore_checkpoint(const NamedTensors& tensors, torch::nn::Module& model, torch::optim::AdamW& optimizer,
                        GradScaler* scaler, const std::string& path);

}  // namespace sparsescope::vision::detail
