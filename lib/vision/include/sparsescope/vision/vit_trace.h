#pragma once
// What a trace of a ViT-family model needs besides the recorded sites: where its tokens come from
// and the picture the network saw.
#include <ATen/core/Tensor.h>

#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/trace.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

/// Class token (and DeiT's distillation token) first, then the patch grid [1, S/p, S/p].
TokenLayout vit_token_layout(const ViTConfig& config);

/// The network input [3, S, S] (any float dtype and device) back to pixels: input * std + mean,
/// scaled to 0..255 and rounded, as a uint8 CPU tensor [S, S, 3].
at::Tensor denormalize_input(const at::Tensor& input, const EvalTransform& transform);

}  // namespace sparsescope::vision
