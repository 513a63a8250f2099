#pragma once
// The ViT family (ViT, DeiT incl. distilled, DINO backbones) with timm's parameter names, so timm
// checkpoints load unchanged. Every attention goes through sparsescope::attend().
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <string>

#include "sparsescope/vision/probe_set.h"
#include "sparsescope/vision/vit_config.h"

namespace sparsescope::vision {

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(ViTConfig config);

  /// images [B, 3, S, S] -> logits [B, num_classes], or without a head the class token [B, D]
  /// (global_pool: the normalised mean of the patch tokens).
  at::Tensor forward(const at::Tensor& images, ProbeSet* probes = nullptr);
  /// images [B, 3, S, S] -> final-normed tokens [B, T, D] (prefix tokens first; global_pool: the
  /// last block's tokens, there is no final norm). Attention sites are named "blocks.<i>.attn".
  at::Tensor forward_features(const at::Tensor& images, ProbeSet* probes = nullptr);
  /// forward_features' tokens -> what forward() returns.
  at::Tensor forward_head(const at::Tensor& features);
  const ViTConfig& config() const { return config_; }
  /// Stochastic depth for the next forward in training mode only: `scales` [depth, 2, B] from
  /// drop_path_scales(). Without it (or in eval mode) every branch counts fully.
  void set_drop_path(at::Tensor scales) { drop_path_ = std::move(scales); }

 private:
  ViTConfig config_;
  torch::nn::Conv2d patch_proj_{nullptr};
  at::Tensor cls_token_, dist_token_, pos_embed_;
  torch::nn::ModuleList blocks_;
  torch::nn::LayerNorm norm_{nullptr}, fc_norm_{nullptr};
  torch::nn::Linear head_{nullptr}, head_dist_{nullptr};
  torch::nn::Sequential probe_head_{nullptr};  // head_norm: BatchNorm1d, Linear
  at::Tensor drop_path_;
};
TORCH_MODULE(VisionTransformer);

/// timm's DropPath draws for a batch of `batch` samples: [depth, 2, B] (per block, the attention
/// and the MLP branch), each 0 with probability p_i = drop_path_rate * i / (depth - 1) and
/// 1 / (1 - p_i) otherwise (timm's linspace(0, rate, depth) and scale_by_keep).
at::Tensor drop_path_scales(const ViTConfig& config, int64_t batch, at::Generator* gen,
                            const at::TensorOptions& options = {});

/// Loads timm-named weights (safetensors or .pth, any stored float dtype) into `model`, resampling
/// `pos_embed` with timm's bicubic rule when the checkpoint's grid differs from the model's.
/// Missing, unexpected and mis-shaped keys are reported together in one sparsescope::Error.
void load_vit_weights(VisionTransformer& model, const std::string& path);

}  // namespace sparsescope::vision
