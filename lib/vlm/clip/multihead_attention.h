#pragma once
// torch.nn.MultiheadAttention under its parameter names (in_proj_weight, in_proj_bias, out_proj),
// batch-first, attention through attend() (Dense, with the site's probe): CLIP's blocks attend to
// themselves, DCLIP's teacher across modalities.
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "sparsescope/kernels/probe.h"

namespace sparsescope::vlm {

class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  /// nn.MultiheadAttention._reset_parameters: xavier-uniform in_proj, zero biases.
  MultiheadAttentionImpl(int64_t width, int64_t heads);
  /// query [B, N, W], key and value [B, M, W] -> [B, N, W]. `causal` masks later keys; `key_valid`
  /// (bool [B, M], undefined = all) drops padded keys.
  at::Tensor forward(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value, bool causal = false,
                     const at::Tensor& key_valid = {}, Probe* probe = nullptr);
  at::Tensor& in_proj_weight() { return in_proj_weight_; }
  torch::nn::Linear& out_proj() { return out_proj_; }

 private:
  int64_t heads_;
  at::Tensor in_proj_weight_, in_proj_bias_;
  torch::nn::Linear out_proj_{nullptr};
};
TORCH_MODULE(MultiheadAttention);

}  // namespace sparsescope::vlm
