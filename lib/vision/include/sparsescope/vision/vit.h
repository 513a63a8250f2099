#pragma once
// The ViT family (ViT, DeiT incl. distilled, DINO backbones) with timm's parameter names, so timm
// checkpoints load unchanged. Every attention goes through sparsescope::attend().
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <optional>
#include <string>
#include <vector>

#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/probe_set.h"
#include "sparsescope/vision/sparsifiner_options.h"

namespace sparsescope::vision {

struct ViTConfig {
  std::string name;
  int64_t img_size = 224;
  int64_t patch_size = 16;
  int64_t in_chans = 3;
  int64_t embed_dim = 768;
  int64_t depth = 12;
  int64_t num_heads = 12;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  int64_t num_classes = 1000;  // 0: no head, forward() returns the normalised class token (DINO)
  bool distilled = false;      // DeiT: distillation token and head_dist, eval logits averaged
  double norm_eps = 1e-6;
  EvalTransform eval;          // how the named weights expect images (mean, std, crop_pct)
  std::optional<SparsifinerOptions> sparsifiner;  // a connectivity predictor in every block (sparsifiner.h)

  int64_t grid() const { return img_size / patch_size; }
  int64_t prefix_tokens() const { return distilled ? 2 : 1; }
  int64_t tokens() const { return grid() * grid() + prefix_tokens(); }
};

/// The named configurations (timm's model names, e.g. "vit_small_patch16_224", "deit_tiny_distilled_patch16_224",
/// "vit_small_patch16_224.dino"); unknown names throw sparsescope::Error listing the known ones.
ViTConfig vit_config(const std::string& name);
std::vector<std::string> vit_config_names();

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(ViTConfig config);

  /// images [B, 3, S, S] -> logits [B, num_classes], or the class token [B, D] without a head.
  at::Tensor forward(const at::Tensor& images, ProbeSet* probes = nullptr);
  /// images [B, 3, S, S] -> final-normed tokens [B, T, D] (prefix tokens first). Attention sites
  /// are named "blocks.<i>.attn".
  at::Tensor forward_features(const at::Tensor& images, ProbeSet* probes = nullptr);
  /// forward_features' tokens -> what forward() returns.
  at::Tensor forward_head(const at::Tensor& features);
  const ViTConfig& config() const { return config_; }

 private:
  ViTConfig config_;
  torch::nn::Conv2d patch_proj_{nullptr};
  at::Tensor cls_token_, dist_token_, pos_embed_;
  torch::nn::ModuleList blocks_;
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr}, head_dist_{nullptr};
};
TORCH_MODULE(VisionTransformer);

/// Loads timm-named weights (safetensors or .pth, any stored float dtype) into `model`, resampling
/// `pos_embed` with timm's bicubic rule when the checkpoint's grid differs from the model's.
/// Missing, unexpected and mis-shaped keys are reported together in one sparsescope::Error.
void load_vit_weights(VisionTransformer& model, const std::string& path);

}  // namespace sparsescope::vision
