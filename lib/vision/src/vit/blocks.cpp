#include "blocks.h"

#include <ATen/ATen.h>

#include "sparsescope/kernels/attend.h"

namespace sparsescope::vision {

namespace nn = torch::nn;

ViTAttentionImpl::ViTAttentionImpl(const ViTConfig& c)
    : site_{c.embed_dim / c.num_heads, c.num_heads, c.tokens(), c.prefix_tokens()} {
  qkv_ = register_module("qkv", nn::Linear(nn::LinearOptions(c.embed_dim, c.embed_dim * 3).bias(c.qkv_bias)));
  proj_ = register_module("proj", nn::Linear(c.embed_dim, c.embed_dim));
  const AttentionPolicyEntry& entry = attention_policy(c.attention.policy);
  policy_ = entry.make(site_, entry.normalize(c.attention.options));
  if (!entry.module_name.empty()) register_module(entry.module_name, policy_);
}

at::Tensor ViTAttentionImpl::forward(const at::Tensor& x, Probe* probe) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2);
  const auto qkv = qkv_->forward(x).reshape({B, N, 3, site_.num_heads, C / site_.num_heads}).permute({2, 0, 3, 1, 4});
  // [3, B, H, N, D]
  const auto out = run_dense ? attend(qkv[0], qkv[1], qkv[2], Dense{}, probe)
                             : policy_->attend(qkv[0], qkv[1], qkv[2], probe);  // [B, H, N, D]
  return proj_->forward(out.transpose(1, 2).reshape({B, N, C}));
}

ViTMlpImpl::ViTMlpImpl(int64_t dim, int64_t hidden) {
  fc1_ = register_module("fc1", nn::Linear(dim, hidden));
  fc2_ = register_module("fc2", nn::Linear(hidden, dim));
}

at::Tensor ViTMlpImpl::forward(const at::Tensor& x) { return fc2_->forward(at::gelu(fc1_->forward(x))); }

ViTBlockImpl::ViTBlockImpl(const ViTConfig& config) {
  const auto norm = nn::LayerNormOptions({config.embed_dim}).eps(config.norm_eps);
  norm1_ = register_module("norm1", nn::LayerNorm(norm));
  attn_ = register_module("attn", ViTAttention(config));
  norm2_ = register_module("norm2", nn::LayerNorm(norm));
  mlp_ = register_module("mlp", ViTMlp(config.embed_dim, static_cast<int64_t>(config.embed_dim * config.mlp_ratio)));
}

at::Tensor ViTBlockImpl::forward(const at::Tensor& x, Probe* probe, const at::Tensor& branch_scales) {
  auto branch = [&](at::Tensor y, int64_t which) {
    if (!branch_scales.defined()) return y;
    return y * branch_scales[which].to(y.scalar_type()).view({-1, 1, 1});
  };
  const auto h = x + branch(attn_->forward(norm1_->forward(x), probe), 0);
  return h + branch(mlp_->forward(norm2_->forward(h)), 1);
}

}  // namespace sparsescope::vision
