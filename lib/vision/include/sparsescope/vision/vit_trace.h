#pragma once
// What a trace of a ViT-family model needs besides the recorded sites: where its tokens come from
// and the picture the network saw.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "sparsescope/vision/eval_transform.h"
#include "sparsescope/vision/trace.h"
#include "sparsescope/vision/vit_config.h"

namespace sparsescope::vision {

/// Class token (and DeiT's distillation token) first, then the patch grid [1, S/p, S/p].
TokenLayout vit_token_layout(const ViTConfig& config);

/// What a trace of `config` running attention `method` on `input` says about itself: model name,
/// method, input, frame (-1 for a still image), token layout and producer; the caller adds topk.
TraceInfo vit_trace_info(const ViTConfig& config, const std::string& method, const std::string& input,
                         int64_t frame);

/// The network input [3, S, S] (any float dtype and device) back to pixels: input * std + mean,
/// scaled to 0..255 and rounded, as a uint8 CPU tensor [S, S, 3].
at::Tensor denormalize_input(const at::Tensor& input, const EvalTransform& transform);

}  // namespace sparsescope::vision
