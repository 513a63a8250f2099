#include "transformer.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <cmath>

#include "sparsescope/kernels/attend.h"

namespace sparsescope::vlm {

namespace nn = torch::nn;

namespace {

class ResidualAttentionBlockImpl : public nn::Module {
 public:
  explicit ResidualAttentionBlockImpl(const TransformerShape& s) : heads_(s.heads), quick_gelu_(s.quick_gelu), causal_(s.causal) {
    ln_1_ = register_module("ln_1", nn::LayerNorm(nn::LayerNormOptions({s.width}).eps(1e-5)));
    auto attn = register_module("attn", std::make_shared<nn::Module>());
    in_proj_weight_ = attn->register_parameter("in_proj_weight", at::empty({3 * s.width, s.width}));
    in_proj_bias_ = attn->register_parameter("in_proj_bias", at::zeros({3 * s.width}));
    out_proj_ = attn->register_module("out_proj", nn::Linear(s.width, s.width));
    ln_2_ = register_module("ln_2", nn::LayerNorm(nn::LayerNormOptions({s.width}).eps(1e-5)));
    const auto hidden = static_cast<int64_t>(static_cast<double>(s.width) * s.mlp_ratio);
    auto mlp = register_module("mlp", std::make_shared<nn::Module>());
    c_fc_ = mlp->register_module("c_fc", nn::Linear(s.width, hidden));
    c_proj_ = mlp->register_module("c_proj", nn::Linear(hidden, s.width));
    at::NoGradGuard no_grad;  // nn.MultiheadAttention._reset_parameters
    nn::init::xavier_uniform_(in_proj_weight_);
    out_proj_->bias.zero_();
  }

  at::Tensor forward(const at::Tensor& x, Probe* probe) {  // [B, N, W]
    const int64_t B = x.size(0), N = x.size(1), W = x.size(2), D = W / heads_;
    const at::Tensor qkv = at::linear(ln_1_->forward(x), in_proj_weight_, in_proj_bias_)
                               .view({B, N, 3, heads_, D})
                               .permute({2, 0, 3, 1, 4});  // [3, B, H, N, D]
    Dense dense;
    dense.causal = causal_;
    const at::Tensor a = attend(qkv[0], qkv[1], qkv[2], dense, probe);
    const at::Tensor h = x + out_proj_->forward(a.transpose(1, 2).reshape({B, N, W}));
    at::Tensor m = c_fc_->forward(ln_2_->forward(h));
    m = quick_gelu_ ? m * at::sigmoid(1.702 * m) : at::gelu(m);
    return h + c_proj_->forward(m);
  }

  void init_text(double attn_std, double proj_std, double fc_std) {
    at::NoGradGuard no_grad;
    in_proj_weight_.normal_(0, attn_std);
    out_proj_->weight.normal_(0, proj_std);
    c_fc_->weight.normal_(0, fc_std);
    c_proj_->weight.normal_(0, proj_std);
  }

 private:
  int64_t heads_;
  bool quick_gelu_, causal_;
  nn::LayerNorm ln_1_{nullptr}, ln_2_{nullptr};
  at::Tensor in_proj_weight_, in_proj_bias_;
  nn::Linear out_proj_{nullptr}, c_fc_{nullptr}, c_proj_{nullptr};
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
