#pragma once
#include <ATen/core/Generator.h>

#include "sparsescope/vision/vit.h"

namespace sparsescope::vision::detail {

/// timm's VisionTransformer initialisation for training from scratch (weight_init ''), drawn from
/// `gen`: Linear weights trunc_normal(std 0.02) with zero biases, LayerNorm ones and zeros,
/// pos_embed and dist_token trunc_normal(0.02), cls_token normal(std 1e-6), and the patch
/// projection as PyTorch's Conv2d default (kaiming_uniform with a = sqrt(5)), as timm leaves it;
/// then each attention policy's own parameters (AttentionPolicyImpl::init_parameters).
void init_for_training(VisionTransformer& model, at::Generator& gen);

}  // namespace sparsescope::vision::detail
