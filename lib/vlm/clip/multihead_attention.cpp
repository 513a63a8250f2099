#include "multihead_attention.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vlm {

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t width, int64_t heads) : heads_(heads) {
  SPARSESCOPE_CHECK(heads > 0 && width % heads == 0, "multi-head attention: width ", width, " is not a multiple of ",
                    heads, " heads");
  in_proj_weight_ = register_parameter("in_proj_weight", at::empty({3 * width, width}));
  in_proj_bias_ = register_parameter("in_proj_bias", at::zeros({3 * width}));
  out_proj_ = register_module("out_proj", torch::nn::Linear(width, width));
  at::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(in_proj_weight_);
  out_proj_->bias.zero_();
}

at::Tensor MultiheadAttentionImpl::forward(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value,
                                           bool causal, const at::Tensor& key_valid, Probe* probe) {
  const int64_t B = query.size(0), N = query.size(1), M = key.size(1), W = query.size(2), D = W / heads_;
  const auto w = in_proj_weight_.chunk(3);
  const auto b = in_proj_bias_.chunk(3);
  auto heads = [&](const at::Tensor& x, int64_t i, int64_t length) {
    return at::linear(x, w[i], b[i]).view({B, length, heads_, D}).transpose(1, 2);  // [B, H, L, D]
  };
  Dense dense;
  dense.causal = causal;
  if (key_valid.defined()) dense.mask = key_valid.view({B, 1, 1, M}).expand({B, 1, N, M});
  const at::Tensor a = attend(heads(query, 0, N), heads(key, 1, M), heads(value, 2, M), dense, probe);
  return out_proj_->forward(a.transpose(1, 2).reshape({B, N, W}));
}

}  // namespace sparsescope::vlm
