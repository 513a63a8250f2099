#pragma once
// A linear classifier fitted on frozen features: the check of an encoder's linear separability
// beside the k-NN of knn.h, without the augmentations and schedule of a trained probe
// (`sparsescope train --task mae-linprobe`).
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sparsescope::vision {

struct LinearProbeOptions {
  double l2 = 1e-4;               ///< lambda of the penalty lambda / 2 * ||W||^2 (not on the bias)
  int64_t max_iterations = 1000;  ///< L-BFGS iterations at most
};

struct LinearProbeResult {
  double train_top1 = 0, test_top1 = 0;
  double loss = 0;          ///< the fitted objective on the training features
  int64_t iterations = 0;   ///< L-BFGS iterations taken
  /// The fitted classifier, float64: logits = ((x - mean) * inv_std) W + bias.
  at::Tensor mean, inv_std, weight, bias;  // [D], [D], [D, C], [C]
};

/// Fits a multinomial logistic regression to `train_features` [N, D] (labels int64 [N] in
/// [0, num_classes)) and scores it on `test_features` [Nt, D]. The features are standardised by the
/// training set's mean and variance (eps 1e-6: MAE's probe puts BatchNorm1d(affine=False, eps=1e-6)
/// before its head, the same map at evaluation), then the mean cross-entropy plus the L2 penalty is
/// minimised by L-BFGS with a strong-Wolfe line search over the whole training set, in float64 on
/// the features' device (CLIP's linear-probe protocol: scikit-learn's LogisticRegression, lbfgs).
/// Deterministic for given features. Throws sparsescope::Error naming the argument at fault.
LinearProbeResult linear_probe(const at::Tensor& train_features, const at::Tensor& train_labels,
                               const at::Tensor& test_features, const at::Tensor& test_labels, int64_t num_classes,
                               const LinearProbeOptions& options = {});

}  // namespace sparsescope::vision
