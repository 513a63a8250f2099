#pragma once
// open_clip's VisionTransformer (transformer.py) as its CLIP configurations use it: conv1 patches
// without bias, class_embedding, learnable positional_embedding, ln_pre, the transformer,
// ln_post on every token, the class token pooled, times proj.
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "sparsescope/vlm/clip.h"
#include "transformer.h"

namespace sparsescope::vlm {

class ClipVisionImpl : public torch::nn::Module {
 public:
  explicit ClipVisionImpl(const ClipConfig& config);
  /// images [B, 3, S, S] -> {pooled [B, embed_dim], tokens [B, grid^2, width] after ln_post}.
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& images, vision::ProbeSet* probes);

 private:
  int64_t image_size_;
  torch::nn::Conv2d conv1_{nullptr};
  at::Tensor class_embedding_, positional_embedding_, proj_;
  torch::nn::LayerNorm ln_pre_{nullptr}, ln_post_{nullptr};
  std::shared_ptr<ClipTransformerImpl> transformer_;
};

}  // namespace sparsescope::vlm
