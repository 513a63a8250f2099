#pragma once
// What builds a ViT-family model (LibTorch-free): its shape, its eval transform and the attention
// policy its blocks run (attention_policy.h), e.g. for model cards, datasets and the command line.
#include <cstdint>
#include <string>
#include <vector>

#include "sparsescope/vision/eval_transform.h"

namespace sparsescope::vision {

/// The attention policy of every attention site of a model, by registered name, with its options
/// as a JSON object (normalised by the policy: every option present, defaults filled in).
struct AttentionSpec {
  std::string policy = "dense";
  std::string options = "{}";
};

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
  /// MAE's fine-tuning head (models_vit.py, timm's global_pool='avg'): the mean of the patch tokens,
  /// normalised by `fc_norm`, instead of the final-normed class token; the model has no `norm`.
  bool global_pool = false;
  /// MAE's linear probe (main_linprobe.py): BatchNorm1d without affine parameters (eps 1e-6) before
  /// the head, named head.0 (its running statistics) and head.1 (the Linear).
  bool head_norm = false;
  /// Stochastic depth of training (timm's drop_path_rate): block i drops each residual branch of a
  /// sample with probability drop_path_rate * i / (depth - 1). Not part of the model card.
  double drop_path_rate = 0;
  EvalTransform eval;          // how the named weights expect images (mean, std, crop_pct)
  AttentionSpec attention;     // what every block's attention runs

  int64_t grid() const { return img_size / patch_size; }
  int64_t prefix_tokens() const { return distilled ? 2 : 1; }
  int64_t tokens() const { return grid() * grid() + prefix_tokens(); }
};

/// The named configurations (timm's model names, e.g. "vit_small_patch16_224", "deit_tiny_distilled_patch16_224",
/// "vit_small_patch16_224.dino"); unknown names throw sparsescope::Error listing the known ones.
ViTConfig vit_config(const std::string& name);
std::vector<std::string> vit_config_names();

}  // namespace sparsescope::vision
