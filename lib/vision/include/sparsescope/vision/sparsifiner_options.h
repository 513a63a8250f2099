#pragma once
// The settings of Sparsifiner's connectivity predictor (lib/vision/sparsifiner/README.md), with
// the official defaults (lim142857/Sparsifiner, sparsifiner_default_config.yaml).
#include <cstdint>

namespace sparsescope::vision {

struct SparsifinerOptions {
  double keep_rate = 0.25;        ///< keys kept per query: ceil(keep_rate * tokens); the class-token row stays dense
  int64_t reduce_c = 2;           ///< the predictor works on head_dim / reduce_c channels
  int64_t reduce_n = 6;           ///< and on tokens / reduce_n low-rank key slots (the basis size)
  double basis_threshold = 0.02;  ///< sparse basis: entries of |W_up| at most this are zero
  int64_t basis_topk = 8;         ///< sparse basis: coefficients kept per query

  int64_t kept_keys(int64_t tokens) const;
  int64_t slots(int64_t tokens) const { return tokens / reduce_n; }
};

/// How a model with predictors attends. Sparse: the predicted top-k keys through attend()'s TopK
/// pattern (inference, and fine-tuning). Dense: the predictors are ignored. Reconstruct: dense
/// attention while training, each predictor recording its reconstruction loss; evaluation then
/// attends sparsely, as the official code does.
enum class SparsifinerMode { Sparse, Dense, Reconstruct };

}  // namespace sparsescope::vision
