#pragma once
// An attention policy: what an attention site of a model runs on its q, k, v (DESIGN.md section 2).
// Each policy owns its parameters (registered under its entry's module_name), their initialisation,
// its FLOPs accounting and what it shows the site's probe. Policies register in registry.h.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include "sparsescope/kernels/probe.h"
#include "sparsescope/vision/registry.h"

namespace sparsescope::vision {

/// Multiply-adds of the multi-head self-attention of one image, summed over the sites.
struct MhsaFlops {
  double projections = 0;  ///< the qkv and output projections, the same for every policy
  double attention = 0;    ///< q k^T and probabilities x v over the keys each query sees
  double predictor = 0;    ///< the policy's own work to choose the keys (e.g. Sparsifiner's predictor)
  double total() const { return projections + attention + predictor; }
};

class AttentionPolicyImpl : public torch::nn::Module {
 public:
  /// q, k, v [B, H, N, D] -> [B, H, N, D]. Calls attend() with `probe` (or observes it otherwise)
  /// for what it computes.
  virtual at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, Probe* probe) = 0;
  /// Adds the attention and predictor multiply-adds of one image at this site to `flops`.
  virtual void count_flops(const AttentionSiteShape& site, MhsaFlops& flops) = 0;
  /// Draws the parameters that the generic initialisation (Linear, LayerNorm, Conv) does not know,
  /// from `gen`, as the method's official code initialises them. Called in module order after those.
  virtual void init_parameters(at::Generator& gen) {}
};

/// Dense attention's multiply-adds at `site`: 2 N^2 D.
double dense_attention_flops(const AttentionSiteShape& site);

}  // namespace sparsescope::vision
