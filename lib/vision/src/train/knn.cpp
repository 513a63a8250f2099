#include "sparsescope/vision/knn.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "labelled_features.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

double knn_top1(const at::Tensor& train_features, const at::Tensor& train_labels, const at::Tensor& test_features,
                const at::Tensor& test_labels, int64_t num_classes, int64_t k, double temperature, int64_t chunk) {
  detail::check_labelled_features("knn_top1", train_features, train_labels, test_features, test_labels);
  SPARSESCOPE_CHECK(k >= 1 && temperature > 0 && chunk >= 1 && num_classes >= 1, "knn_top1: k ", k, ", temperature ",
                    temperature, ", chunk ", chunk, " and num_classes ", num_classes, " must be positive");
  at::Tensor train = train_features.to(at::kFloat);
  train = (train / train.norm(2, 1, true).clamp_min(1e-12)).t();  // [D, N]
  const at::Tensor labels = train_labels.to(train.device());
  const int64_t neighbours = std::min(k, train_features.size(0));
  int64_t correct = 0;
  for (int64_t begin = 0; begin < test_features.size(0); begin += chunk) {
    const int64_t n = std::min(chunk, test_features.size(0) - begin);
    at::Tensor features = test_features.narrow(0, begin, n).to(train.options());
    features = features / features.norm(2, 1, true).clamp_min(1e-12);
    const auto [similarity, index] = at::matmul(features, train).topk(neighbours, 1, true, true);
    const at::Tensor votes = at::zeros({n, num_classes}, train.options())
                                 .scatter_add_(1, labels.index_select(0, index.flatten()).view({n, neighbours}),
                                               (similarity / temperature).exp());
    correct += votes.argmax(1).eq(test_labels.narrow(0, begin, n).to(train.device())).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(test_features.size(0));
}

}  // namespace sparsescope::vision
