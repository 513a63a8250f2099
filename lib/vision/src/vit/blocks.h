#pragma once
// Transformer building blocks shared by the ViT family and the methods built on it. Submodule names
// follow timm: attn.qkv, attn.proj, mlp.fc1, mlp.fc2; a policy's parameters sit under attn.<its
// module_name> as its official checkpoints name them.
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "sparsescope/kernels/probe.h"
#include "sparsescope/vision/attention_policy.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

class ViTAttentionImpl : public torch::nn::Module {
 public:
  explicit ViTAttentionImpl(const ViTConfig& config);
  at::Tensor forward(const at::Tensor& x, Probe* probe);  // [B, N, C] -> [B, N, C]

  AttentionPolicyImpl& policy() { return *policy_; }
  const AttentionSiteShape& site() const { return site_; }
  /// Dense attention instead of the policy (the policy's parameters stay as they are).
  bool run_dense = false;

 private:
  AttentionSiteShape site_;
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr};
  std::shared_ptr<AttentionPolicyImpl> policy_;
};
TORCH_MODULE(ViTAttention);

class ViTMlpImpl : public torch::nn::Module {
 public:
  ViTMlpImpl(int64_t dim, int64_t hidden);
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(ViTMlp);

/// Pre-norm block: x + attn(norm1(x)), then x + mlp(norm2(x)). With `branch_scales` ([2, B]: per
/// sample, the attention and the MLP branch) each branch is multiplied by its sample's scale:
/// stochastic depth's 0 or 1 / keep probability (drop_path_scales in vit.h).
class ViTBlockImpl : public torch::nn::Module {
 public:
  explicit ViTBlockImpl(const ViTConfig& config);
  at::Tensor forward(const at::Tensor& x, Probe* probe, const at::Tensor& branch_scales = {});

 private:
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  ViTAttention attn_{nullptr};
  ViTMlp mlp_{nullptr};
};
TORCH_MODULE(ViTBlock);

}  // namespace sparsescope::vision
