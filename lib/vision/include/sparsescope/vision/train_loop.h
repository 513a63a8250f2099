#pragma once
// One training loop for every task: AdamW with weight-decay groups, the warmup + cosine (or
// multi-step) schedule,
// autocast, gradient clipping, a loss scale for float16, checkpoints with the model card after
// every epoch, exact resume, a time budget, a JSON log, progress callbacks and an evaluation after
// every epoch; on CUDA, cuDNN's algorithm search (its benchmark mode). A TrainTask supplies the rest: the module, its data as batches, the loss and metrics
// of a batch, an after-step hook (EMA teachers) and its evaluation metric. Classification
// (train.h) is one such task.
#include <ATen/core/Generator.h>
#include <ATen/core/ScalarType.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sparsescope/vision/precision.h"
#include "sparsescope/vision/safetensors.h"

namespace torch::nn {
class Module;
}
namespace torch::optim {
class OptimizerParamGroup;
}

namespace sparsescope::vision {

struct ParamGroups;  // train_optim.h

/// Named metrics of an epoch or an evaluation ("top1", "psnr", "r@1", ...).
using Metrics = std::map<std::string, double>;

/// The options of the loop, shared by every task.
struct TrainRecipe {
  int64_t epochs = 100;
  int64_t batch = 256;           ///< examples per step; the last partial batch of an epoch is dropped
  double lr = 1e-3;              ///< peak learning rate (LrSchedule::base_lr)
  double min_lr = 1e-5;          ///< the cosine's end
  std::vector<double> lr_milestones;  ///< fractions of the run: multi-step decay instead of the cosine
  double lr_gamma = 0.5;         ///< the multi-step decay's factor
  double warmup_lr = 1e-6;
  double warmup_epochs = 5;
  double weight_decay = 0.05;    ///< for the task's decayed parameter group
  double clip_grad = 1.0;        ///< max global gradient norm; 0 turns clipping off
  std::string device = "cpu";    ///< "cpu", "cuda" or "cuda:N"
  Precision precision = Precision::FP32;
  bool tf32 = false;             ///< allow TF32 matmuls and convolutions on CUDA
  bool cuda_graph = false;       ///< after 3 eager steps, replay the step as one CUDA graph
                                 ///< (TrainTask::graph_safe tasks, AdamW, CUDA)
  uint64_t seed = 0;             ///< initialisation, data order and augmentation
  int64_t eval_batch = 512;
  at::ScalarType save_dtype = at::kFloat;  ///< of model.safetensors (the checkpoint stays float32)
  std::string out;               ///< folder for model.safetensors, checkpoint.safetensors, log.json
  bool resume = false;           ///< continue from out/checkpoint.safetensors if it exists
  int64_t stop_after = 0;        ///< > 0: stop after that epoch as if interrupted (resume later)
  double stop_after_seconds = 0; ///< > 0: stop as if interrupted after the last epoch that fits in this
                                 ///< many seconds of this process (a chunk of a longer run; resume later)
  double time_budget = 0;        ///< > 0 seconds: after epoch 2, lower `epochs` so that the run fits
                                 ///< (to 1 when the first epoch spends it all)
  std::string command;           ///< the command line, recorded in log.json and the model file
};

/// A batch of named tensors on the training device: "images" and "labels"; "lr" and "hr"; ...
struct Batch {
  std::map<std::string, at::Tensor> tensors;
  int64_t size = 0;  ///< examples
  /// The tensor `name`; throws sparsescope::Error naming the batch's tensors when it has none.
  const at::Tensor& at(const std::string& name) const;
};

/// Examples addressed by index, gathered into batches.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t size() const = 0;
  virtual std::string source() const = 0;  ///< a folder, a dataset name
  /// The examples `index` (int64 [B] on the CPU, pinned when training on a GPU so that a
  /// non-blocking copy to the device does not wait for it), augmented with `gen` when given.
  virtual Batch batch(const at::Tensor& index, at::Generator* gen) const = 0;
};

/// What one step computes: the loss to minimise, and sums that make the epoch's training metrics
/// (device scalars, read once at the end of the epoch).
struct StepResult {
  at::Tensor loss;
  std::map<std::string, at::Tensor> sums;
};

/// What a run trains. The task builds and initialises its module (from the recipe's seed) before
/// the loop starts; the loop moves it to the device, trains it and saves it.
class TrainTask {
 public:
  virtual ~TrainTask() = default;
  /// A JSON object of what a checkpoint must share with the run that resumes it (model, data, the
  /// task's options); merged with the recipe's entries into the checkpoint's fingerprint.
  virtual std::string fingerprint() const = 0;
  virtual torch::nn::Module& module() = 0;
  /// The module written to model.safetensors: module() by default, an EMA copy where the method
  /// evaluates and ships that (BasicSR's params_ema).
  virtual torch::nn::Module& saved_module();
  /// Whether the named parameter of module() trains; the others are frozen.
  virtual bool trains(const std::string& parameter) const;
  /// The optimizer's groups over the trained parameters, each with its lr scale; by default timm's
  /// two weight-decay groups.
  virtual ParamGroups param_groups(double lr, double weight_decay);
  virtual const BatchSource& data() const = 0;
  /// The loss of a batch, under autocast, and the sums of the epoch's training metrics.
  virtual StepResult step(const Batch& batch) = 0;
  /// Runs after every optimizer step (an EMA teacher's update).
  virtual void after_step();
  /// Whether step() launches device work only (no host draws, host-to-device copies or host reads
  /// of device values), so that a CUDA graph can capture it once and replay it (--cuda-graph).
  virtual bool graph_safe() const;
  /// The training metrics of an epoch of `examples` examples from its summed StepResult::sums.
  virtual Metrics train_metrics(const std::map<std::string, double>& sums, int64_t examples) const;
  /// Metrics on held-out data, after every epoch; empty when there is none.
  virtual Metrics evaluate(const TrainRecipe& recipe);
  virtual std::string eval_source() const;  ///< the held-out data, or empty
  /// Tensors besides the module's parameters that a checkpoint keeps (an EMA teacher's weights),
  /// and their restore on resume.
  virtual NamedTensors state() const;
  virtual void load_state(const NamedTensors& state, const std::string& source);
  /// The metadata of the model file (its model card, model_card.h).
  virtual std::map<std::string, std::string> model_metadata() const = 0;
};

struct EpochRecord {
  int64_t epoch = 0;             ///< 1-based
  double lr = 0;                 ///< of the epoch's last step
  double train_loss = 0;         ///< mean over the epoch's steps
  Metrics train;                 ///< TrainTask::train_metrics
  Metrics eval;                  ///< TrainTask::evaluate; empty without held-out data
  double eval_seconds = 0;
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
  std::string model_name;           ///< the trained model's name (set by the task)
  /// Inputs the task's data loading skipped: (file, reason). Set by the task.
  std::vector<std::pair<std::string, std::string>> failures;
};

/// Trains `task` with `recipe`. After each epoch it writes, atomically: out/checkpoint.safetensors
/// (float32 weights and buffers such as BatchNorm statistics, AdamW moments and steps under
/// "optimizer/<name>/...", the loss scale, the task's state under "task/..."; metadata: the model
/// card and the training state), out/model.safetensors (TrainTask::saved_module's weights and floating buffers in
/// save_dtype with the model card and a training summary) and
/// out/log.json (options and one record per epoch). With `resume`, a checkpoint in `out` is
/// continued exactly (same data order, augmentation and optimizer state) after checking that its
/// fingerprint is this run's. Everything random comes from CPU generators seeded from (seed, epoch).
/// Throws sparsescope::Error naming the option at fault.
TrainResult train(TrainTask& task, const TrainRecipe& recipe, const TrainCallbacks& callbacks = {});

/// The device a recipe names; throws sparsescope::Error naming --device when it is unknown or absent.
at::Device training_device(const std::string& name);

}  // namespace sparsescope::vision
