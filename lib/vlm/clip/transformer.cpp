#include "transformer.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <cmath>

#include "multihead_attention.h"

namespace sparsescope::vlm {

namespace nn = torch::nn;

namespace {

class ResidualAttentionBlockImpl : public nn::Module {
 public:
  explicit ResidualAttentionBlockImpl(const TransformerShape& s) : quick_gelu_(s.quick_gelu), causal_(s.causal) {
    ln_1_ = register_module("ln_1", nn::LayerNorm(nn::LayerNormOptions({s.width}).eps(1e-5)));
    attn_ = register_module("attn", MultiheadAttention(s.width, s.heads));
    ln_2_ = register_module("ln_2", nn::LayerNorm(nn::LayerNormOptions({s.width}).eps(1e-5)));
    const auto hidden = static_cast<int64_t>(static_cast<double>(s.width) * s.mlp_ratio);
    auto mlp = register_module("mlp", std::make_shared<nn::Module>());
    c_fc_ = mlp->register_module("c_fc", nn::Linear(s.width, hidden));
    c_proj_ = mlp->register_module("c_proj", nn::Linear(hidden, s.width));
  }

  at::Tensor forward(const at::Tensor& x, Probe* probe) {  // [B, N, W]
    const at::Tensor n = ln_1_->forward(x);
    const at::Tensor h = x + attn_->forward(n, n, n, causal_, {}, probe);
    at::Tensor m = c_fc_->forward(ln_2_->forward(h));
    m = quick_gelu_ ? m * at::sigmoid(1.702 * m) : at::gelu(m);
    return h + c_proj_->forward(m);
  }

  void init_text(double attn_std, double proj_std, double fc_std) {
    at::NoGradGuard no_grad;
    attn_->in_proj_weight().normal_(0, attn_std);
    attn_->out_proj()->weight.normal_(0, proj_std);
    c_fc_->weight.normal_(0, fc_std);
    c_proj_->weight.normal_(0, proj_std);
  }

 private:
  bool quick_gelu_, causal_;
  nn::LayerNorm ln_1_{nullptr}, ln_2_{nullptr};
  MultiheadAttention attn_{nullptr};
  nn::Linear c_fc_{nullptr}, c_proj_{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

}  // namespace

ClipTransformerImpl::ClipTransformerImpl(const TransformerShape& shape) : shape_(shape) {
  blocks_ = register_module("resblocks", nn::ModuleList());
  for (int64_t i = 0; i < shape.layers; ++i) blocks_->push_back(ResidualAttentionBlock(shape));
}

at::Tensor ClipTransformerImpl::forward(at::Tensor x, vision::ProbeSet* probes, const std::string& site_prefix) {
  for (size_t i = 0; i < blocks_->size(); ++i) {
    x = blocks_[i]->as<ResidualAttentionBlock>()->forward(
        x, vision::probe_for(probes, site_prefix + "resblocks." + std::to_string(i) + ".attn"));
  }
  return x;
}

void ClipTransformerImpl::init_text_blocks() {
  const double w = static_cast<double>(shape_.width);
  const double attn_std = std::pow(w, -0.5);
  const double proj_std = attn_std * std::pow(2.0 * static_cast<double>(shape_.layers), -0.5);
  const double fc_std = std::pow(2.0 * w, -0.5);
  for (const auto& block : *blocks_) block->as<ResidualAttentionBlock>()->init_text(attn_std, proj_std, fc_std);
}

}  // namespace sparsescope::vlm
