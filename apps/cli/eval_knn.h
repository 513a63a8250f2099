#pragma once
// sparsescope eval --task knn: the weighted k-NN top-1 of an encoder's features (DINO's eval_knn.py),
// the label-free check of self-supervised pretraining.
#include <cstdint>
#include <string>

namespace sparsescope::cli {

struct KnnEvalRequest {
  std::string weights;
  std::string model;    ///< a configuration for weights without a card (MAE's or timm's names)
  std::string dataset;  ///< with a train and a test split (fashion-mnist, or DIR/train and DIR/test)
  int64_t k = 20;
  double temperature = 0.07;
  int64_t limit = 0;  ///< > 0: the first `limit` images of each split
  int64_t batch = 256;
  std::string device = "cpu";
  bool json = false;
};

/// Prints the top-1 of classifying the test split by the training split's features; returns the
/// exit status (1 when images were skipped).
int run_knn_eval(const KnnEvalRequest& request);

}  // namespace sparsescope::cli
