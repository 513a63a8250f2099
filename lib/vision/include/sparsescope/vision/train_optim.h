#pragma once
// The optimisation recipe of image-classification training, as timm does it: weight-decay groups,
// the warmup + cosine learning-rate schedule (lr_schedule.h) and gradient-norm clipping.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "sparsescope/vision/lr_schedule.h"

namespace sparsescope::vision {

/// timm's rule (param_groups_weight_decay with VisionTransformer.no_weight_decay()): parameters
/// of at most one dimension (every bias, LayerNorm weights), names ending in ".bias", and
/// pos_embed, cls_token, dist_token are not decayed; the other weights are.
bool uses_weight_decay(const std::string& name, const at::Tensor& param);

/// Which parameters a recipe decays (uses_weight_decay is timm's rule for classification).
using DecayRule = std::function<bool(const std::string& name, const at::Tensor& param)>;

/// The optimizer's parameter groups, each with the multiplier of the schedule's learning rate it
/// trains at, and which optimizer they are for (the groups' options are its options).
struct ParamGroups {
  enum class Optimizer { AdamW, Lars };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::vector<double> lr_scales;  ///< one per group
  Optimizer optimizer = Optimizer::AdamW;
};

/// Two AdamW parameter groups in the module's parameter order, over the parameters that require
/// gradients: [0] those `decays` picks with `weight_decay`, [1] the others with 0; both at lr
/// scale 1. Each group's options start from `lr` and `betas`.
ParamGroups weight_decay_groups(const torch::nn::Module& module, double lr, double weight_decay,
                                const DecayRule& decays = uses_weight_decay,
                                std::tuple<double, double> betas = {0.9, 0.999});

/// The layer of a ViT parameter in MAE's layer-wise decay (util/lr_decay.py get_layer_id_for_vit):
/// 0 for cls_token, pos_embed and patch_embed.*, i + 1 for blocks.i.*, depth + 1 for the rest.
int64_t vit_layer_id(const std::string& name, int64_t depth);

/// MAE's param_groups_lrd for a ViT of `depth` blocks: one group per layer and decay setting, in
/// order of first appearance, at lr scale layer_decay^(depth + 1 - layer); weight decay as
/// uses_weight_decay (1-D parameters and the tokens and position embedding are not decayed).
ParamGroups layer_decay_groups(const torch::nn::Module& module, int64_t depth, double lr, double weight_decay,
                               double layer_decay, std::tuple<double, double> betas = {0.9, 0.999});

/// One LARS group over the parameters that require gradients (MAE's linear probe, util/lars.py:
/// momentum 0.9, trust coefficient 0.001; weight decay and the trust ratio for matrices only).
ParamGroups lars_groups(const torch::nn::Module& module, double lr, double weight_decay);

/// Scales the gradients of `params` so that their global L2 norm is at most `max_norm`
/// (torch.nn.utils.clip_grad_norm_, foreach path), without waiting for the device. Returns the
/// norm before clipping as a 0-dim tensor on the gradients' device (undefined if no gradients).
at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace sparsescope::vision
