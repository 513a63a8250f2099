#pragma once
// Image-classification training of ViT-family models, the classification task on the training
// loop (train_loop.h): timm's recipe (label smoothing, crop/flip/erasing augmentation) with the
// loop's AdamW, schedule, clipping, mixed precision, checkpoints, resume and log; top-1/top-5 on
// held-out data every epoch.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sparsescope/vision/augment.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/train_loop.h"
#include "sparsescope/vision/train_task.h"
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

/// The classification recipe's options as training-task options (train_task.h), for every task
/// that trains a classifier: label_smoothing, random_erasing, no_flip, pad, crop_scale.
std::vector<OptionDoc> classification_recipe_options();

/// The labelled images a task trains and evaluates on.
struct LabelledSplits {
  ImageDataset train;
  std::optional<ImageDataset> eval;  ///< request.eval_dataset, else the dataset's test split, else none
  /// Every skipped file of both splits: (path, reason).
  std::vector<std::pair<std::string, std::string>> failures() const;
};

/// Loads the labelled images of `request` (datasets.h: its dataset names and splits) at the input
/// geometry of `config`, with `classes` as load_image_folder takes them (empty: the training
/// data's; the held-out split takes the training split's), and sets config.num_classes. Skipped
/// files and "<what> on N images of ... (K classes), evaluating on ..." are reported through
/// callbacks.on_note. Throws sparsescope::Error naming the dataset at fault.
LabelledSplits load_labelled_splits(const TrainRequest& request, ViTConfig& config,
                                    const std::vector<std::string>& classes, const std::string& what,
                                    const TrainCallbacks& callbacks);

/// A classification task's data and recipe, from a request.
struct ClassificationData : LabelledSplits {
  TrainOptions recipe;  ///< request.recipe with the task's classification_recipe_options
};

/// load_labelled_splits ("training <config.name>") with the task's classification recipe options.
/// Throws sparsescope::Error naming the dataset or option at fault.
ClassificationData load_classification_data(const TrainTaskEntry& task, const TrainRequest& request,
                                            ViTConfig& config, const std::vector<std::string>& classes,
                                            const TrainCallbacks& callbacks);

}  // namespace sparsescope::vision
