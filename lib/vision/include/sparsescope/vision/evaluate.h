#pragma once
// Classification accuracy of a ViT-family model on a labelled dataset.
#include <cstdint>
#include <functional>
#include <string>

#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/precision.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

struct EvalOptions {
  int64_t batch = 256;
  Precision precision = Precision::FP32;
  std::function<void(int64_t images)> on_batch;  ///< progress: images of the batch just done
  bool cuda_graph = false;  ///< full batches' forward replayed from a CUDA graph (graphed_forward.h; CUDA only)
};

struct EvalResult {
  int64_t images = 0;
  double top1 = 0.0;     ///< fraction of images whose label is the top class
  double top5 = 0.0;     ///< ... among the top min(5, classes)
  double loss = 0.0;     ///< mean cross-entropy
  double seconds = 0.0;  ///< from the first batch to the results on the host

  double images_per_second() const { return seconds > 0 ? static_cast<double>(images) / seconds : 0.0; }
};

/// Bytes one image needs at the peak of an inference forward pass of `config` with `element_bytes`
/// per value: one block's attention scores and probabilities (heads x tokens^2, twice) or its MLP
/// hidden layer, whichever is larger, plus the residual stream, its norm, qkv and the input image,
/// doubled for temporaries. An estimate to bound batch sizes by, not a measurement.
int64_t inference_bytes_per_image(const ViTConfig& config, int64_t element_bytes);

/// Evaluates `model` (eval mode, no gradients; its training flag is restored) on `data`, whose
/// pixels are normalised with the model's eval transform (normalize_pixels) and sent batch by
/// batch to the device and dtype of the model's parameters. Throws sparsescope::Error when the
/// data does not fit the model (shape, channels, a label beyond its classes) or is empty.
EvalResult evaluate(VisionTransformer& model, const ImageDataset& data, const EvalOptions& options = {});

}  // namespace sparsescope::vision
