#pragma once
// Image-classification training of ViT-family models, the classification task on the training
// loop (train_loop.h): timm's recipe (label smoothing, crop/flip/erasing augmentation) with the
// loop's AdamW, schedule, clipping, mixed precision, checkpoints, resume and log; top-1/top-5 on
// held-out data every epoch.
#include <functional>
#include <string>

#include "sparsescope/vision/augment.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/train_loop.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

/// What a method changes in train_classifier; unset members keep the plain classifier's behaviour.
struct TrainObjective {
  std::string name = "classify";  ///< recorded in the fingerprint: a resumed run must use the same
  /// Runs after timm's initialisation, before training (e.g. loads a teacher's weights).
  std::function<void(VisionTransformer& model)> init;
  /// Whether the named parameter trains; the others are frozen (requires_grad off). Unset: all.
  std::function<bool(const std::string& parameter)> trains;
  /// The loss of one batch under autocast, setting `logits` for the training accuracy. Unset:
  /// label-smoothed cross-entropy of model->forward(images).
  std::function<at::Tensor(VisionTransformer& model, const at::Tensor& images, const at::Tensor& labels,
                           double label_smoothing, at::Tensor& logits)>
      loss;
};

/// The classification recipe: the loop's (train_loop.h) plus label smoothing, augmentation and
/// what a method changes.
struct TrainOptions : TrainRecipe {
  double label_smoothing = 0.1;
  AugmentOptions augment;
  TrainObjective objective;      ///< what a method changes (sparsifiner.h); the default trains a classifier
};

/// Trains a new model of `config` (timm's initialisation; num_classes must match the classes of
/// `train`) on `train` through train() (train_loop.h: its files, resume and log), evaluating on
/// `eval` (may be null) after every epoch. Training metrics: "top1"; evaluation: "loss", "top1",
/// "top5", "images" (EvalResult). Throws sparsescope::Error naming the option at fault.
TrainResult train_classifier(const ViTConfig& config, const ImageDataset& train, const ImageDataset* eval,
                             const TrainOptions& options, const TrainCallbacks& callbacks = {});

}  // namespace sparsescope::vision
