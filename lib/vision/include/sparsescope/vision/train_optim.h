#pragma once
// The optimisation recipe of image-classification training, as timm does it: weight-decay groups,
// the warmup + cosine learning-rate schedule (lr_schedule.h) and gradient-norm clipping.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sparsescope/vision/lr_schedule.h"

namespace sparsescope::vision {

/// timm's rule (param_groups_weight_decay with VisionTransformer.no_weight_decay()): parameters
/// of at most one dimension (every bias, LayerNorm weights), names ending in ".bias", and
/// pos_embed, cls_token, dist_token are not decayed; the other weights are.
bool uses_weight_decay(const std::string& name, const at::Tensor& param);

/// Two AdamW parameter groups in the module's parameter order: [0] the decayed parameters with
/// `weight_decay`, [1] the others with 0. Each group's options start from `lr`.
std::vector<torch::optim::OptimizerParamGroup> weight_decay_groups(const torch::nn::Module& module, double lr,
                                                                   double weight_decay);

/// Scales the gradients of `params` so that their global L2 norm is at most `max_norm`
/// (torch.nn.utils.clip_grad_norm_, foreach path), without waiting for the device. Returns the
/// norm before clipping as a 0-dim tensor on the gradients' device (undefined if no gradients).
at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace sparsescope::vision
