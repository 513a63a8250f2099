#pragma once
// sparsescope eval --task knn | linear-probe: an encoder's frozen features classified by the
// weighted k-NN of DINO's eval_knn.py or by a linear probe fitted on them (linear_probe.h), the
// checks of self-supervised pretraining.
#include <cstdint>
#include <string>

namespace sparsescope::cli {

struct EncoderEvalRequest {
  std::string task;  ///< "knn" or "linear-probe"
  std::string weights;
  std::string model;    ///< a configuration for weights without a card (MAE's or timm's names)
  std::string dataset;  ///< with a train and a test split (fashion-mnist, or DIR/train and DIR/test)
  int64_t k = 20;
  double temperature = 0.07;
  double probe_l2 = 1e-4;
  int64_t probe_iterations = 1000;
  int64_t limit = 0;  ///< > 0: the first `limit` images of each split
  int64_t batch = 256;
  std::string device = "cpu";
  bool json = false;
};

/// Prints the top-1 of classifying the test split by the training split's features; returns the
/// exit status (1 when images were skipped).
int run_encoder_eval(const EncoderEvalRequest& request);

}  // namespace sparsescope::cli
