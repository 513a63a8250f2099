#pragma once
// The weighted k-nearest-neighbour classifier that self-supervised methods are evaluated with
// (Wu et al. 2018, as DINO's eval_knn.py computes it).
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sparsescope::vision {

/// Top-1 accuracy of classifying `test_features` [Nt, D] by their `k` most cosine-similar rows of
/// `train_features` [N, D] (labels int64 [N] in [0, num_classes)), each neighbour voting for its
/// label with weight exp(similarity / temperature). Features are L2-normalised here; the test set
/// is processed in chunks of `chunk` rows. Throws sparsescope::Error naming the argument at fault.
double knn_top1(const at::Tensor& train_features, const at::Tensor& train_labels, const at::Tensor& test_features,
                const at::Tensor& test_labels, int64_t num_classes, int64_t k = 20, double temperature = 0.07,
                int64_t chunk = 1024);

}  // namespace sparsescope::vision
