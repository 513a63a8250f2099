#pragma once
// Image-classification training of ViT-family models (timm's recipe: AdamW with weight-decay
// groups, warmup + cosine schedule, label smoothing, gradient clipping, crop/flip/erasing
// augmentation, optional autocast mixed precision), with an evaluation every epoch, resumable
// checkpoints and a JSON log.
#include <ATen/core/ScalarType.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sparsescope/vision/augment.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/evaluate.h"
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

struct TrainOptions {
  int64_t epochs = 100;
  int64_t batch = 256;           ///< images per step; the last partial batch of an epoch is dropped
  double lr = 1e-3;              ///< peak learning rate (WarmupCosine::base_lr)
  double min_lr = 1e-5;
  double warmup_lr = 1e-6;
  double warmup_epochs = 5;
  double weight_decay = 0.05;    ///< for the groups of uses_weight_decay()
  double label_smoothing = 0.1;
  double clip_grad = 1.0;        ///< max global gradient norm; 0 turns clipping off
  AugmentOptions augment;
  std::string device = "cpu";    ///< "cpu", "cuda" or "cuda:N"
  Precision precision = Precision::FP32;
  bool tf32 = false;             ///< allow TF32 matmuls and convolutions on CUDA
  uint64_t seed = 0;             ///< initialisation, data order and augmentation
  int64_t eval_batch = 512;
  at::ScalarType save_dtype = at::kFloat;  ///< of model.safetensors (the checkpoint stays float32)
  std::string out;               ///< folder for model.safetensors, checkpoint.safetensors, log.json
  bool resume = false;           ///< continue from out/checkpoint.safetensors if it exists
  int64_t stop_after = 0;        ///< > 0: stop after that epoch as if interrupted (resume later)
  double time_budget = 0;        ///< > 0 seconds: after epoch 2, lower `epochs` so that the run fits
  std::string command;           ///< the command line, recorded in log.json and the model file
  TrainObjective objective;      ///< what a method changes (sparsifiner.h); the default trains a classifier
};

struct EpochRecord {
  int64_t epoch = 0;             ///< 1-based
  double lr = 0;                 ///< of the epoch's last step
  double train_loss = 0;         ///< mean over the epoch's steps (label-smoothed, augmented data)
  double train_top1 = 0;
  std::optional<EvalResult> eval;
  double seconds = 0;            ///< training and evaluation
  double train_images_per_second = 0;
};

struct TrainCallbacks {
  std::function<void(int64_t epoch, int64_t steps)> on_epoch_start;
  std::function<void()> on_step;
  std::function<void(const EpochRecord& record, int64_t epochs)> on_epoch_end;
  std::function<void(const std::string& line)> on_note;  ///< resumed, time budget applied
};

struct TrainResult {
  std::vector<EpochRecord> epochs;  ///< every epoch so far, resumed runs included
  int64_t planned_epochs = 0;       ///< `epochs`, or fewer after a time budget
  bool finished = false;            ///< false when stopped by stop_after
  std::string model_path;           ///< out/model.safetensors
};

/// Trains a new model of `config` (timm's initialisation; num_classes must match the classes of
/// `train`) on `train`, evaluating on `eval` (may be null) after every epoch. After each epoch it
/// writes, atomically: out/checkpoint.safetensors (float32 weights under timm's names, AdamW
/// moments and steps under "optimizer/<name>/...", the loss scale; metadata: the model card and
/// the training state), out/model.safetensors (weights in save_dtype with the model card, see
/// model_card.h) and out/log.json (options and one record per epoch). With `resume`, a checkpoint
/// in `out` is continued exactly (same data order, augmentation and optimizer state) after
/// checking that it was made with the same model, data and recipe. Throws sparsescope::Error
/// naming the option at fault.
TrainResult train_classifier(const ViTConfig& config, const ImageDataset& train, const ImageDataset* eval,
                             const TrainOptions& options, const TrainCallbacks& callbacks = {});

}  // namespace sparsescope::vision
