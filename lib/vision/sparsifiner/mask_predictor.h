#pragma once
// Sparsifiner's connectivity predictor, one per block (parameter names as the official
// `blocks.<i>.attn.mask_predictor.*`), and the attention it drives: Sparsifiner's attention policy.
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <optional>

#include "sparsescope/kernels/probe.h"
#include "sparsescope/vision/attention_policy.h"
#include "sparsescope/vision/sparsifiner_options.h"

namespace sparsescope::vision {

class MaskPredictorImpl : public AttentionPolicyImpl {
 public:
  MaskPredictorImpl(int64_t head_dim, int64_t num_heads, int64_t tokens, const SparsifinerOptions& options);

  /// The approximate attention of the queries after the class token, [B, H, N - 1, N], from the
  /// per-head q, k [B, H, N, head_dim] (before scaling). `sparse`: the inference form
  /// (|W_up| thresholded, top basis_topk coefficients), else the trained signed basis.
  at::Tensor approximate(const at::Tensor& q, const at::Tensor& k, bool sparse);
  /// The keys each query after the class token keeps, [B, H, N - 1, kept_keys] int64 (no gradient):
  /// the top of approximate(q, k, true), selected without materialising it (basis_topk.h).
  at::Tensor kept_keys(const at::Tensor& q, const at::Tensor& k);
  /// The attention of the block for q, k, v [B, H, N, D] -> [B, H, N, D] in the current mode.
  at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, Probe* probe) override;
  /// The attention over the kept keys (the class-token row sees every key) and the predictor's
  /// work: channel and key-token reductions, low-rank scores, the sparse up-projection over the
  /// measured basis non-zeros (softmax and top-k selection are not counted, as usual).
  void count_flops(const AttentionSiteShape& site, MhsaFlops& flops) override;
  void init_parameters(at::Generator& gen) override { reset_slot_matrices(gen); }

  SparsifinerMode mode = SparsifinerMode::Sparse;
  /// Reconstruct mode, after a training forward: the summed squared error between the approximate
  /// attention and the block's dense attention probabilities (class-token row left out).
  at::Tensor reconstruction_loss;

  const SparsifinerOptions& options() const { return options_; }
  /// Draws proj_n and proj_back_n as upstream (trunc_normal, std 0.02) from `gen` (the global
  /// generator when unset); the Linear layers are initialised as every Linear of the model.
  void reset_slot_matrices(const std::optional<at::Generator>& gen = std::nullopt);
  /// Mean non-zero entries per row of the sparse basis (FLOPs of the up-projection).
  double basis_nonzeros_per_row();

 private:
  /// The softmax over the slots of the queries after the class token, [B, H, N - 1, S].
  at::Tensor coefficients(const at::Tensor& q, const at::Tensor& k);
  /// The inference basis |W_up| thresholded, [S, N].
  at::Tensor sparse_basis() const;

  SparsifinerOptions options_;
  int64_t num_heads_, tokens_, keys_;
  torch::nn::Linear proj_c_q_{nullptr}, proj_c_k_{nullptr};
  at::Tensor proj_n_, proj_back_n_;  // [N, slots]: key-token reduction and the basis W_up^T
};
TORCH_MODULE(MaskPredictor);

}  // namespace sparsescope::vision
