#pragma once
// The argument checks of the classifiers evaluated on frozen features (knn.h, linear_probe.h).
#include <ATen/core/Tensor.h>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision::detail {

/// Features [N, D] and [Nt, D] with one D, one label per row, neither set empty; errors name `who`.
inline void check_labelled_features(const char* who, const at::Tensor& train_features, const at::Tensor& train_labels,
                                    const at::Tensor& test_features, const at::Tensor& test_labels) {
  SPARSESCOPE_CHECK(train_features.dim() == 2 && test_features.dim() == 2 &&
                        train_features.size(1) == test_features.size(1),
                    who, ": features must be [N, D] with one D, got ", train_features.sizes(), " and ",
                    test_features.sizes());
  SPARSESCOPE_CHECK(train_labels.dim() == 1 && train_labels.size(0) == train_features.size(0) &&
                        test_labels.dim() == 1 && test_labels.size(0) == test_features.size(0),
                    who, ": one label per feature row");
  SPARSESCOPE_CHECK(train_features.size(0) >= 1 && test_features.size(0) >= 1, who, ": empty feature set");
}

}  // namespace sparsescope::vision::detail
