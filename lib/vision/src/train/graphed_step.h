#pragma once
// A training step captured once as a CUDA graph and replayed at every later step (`--cuda-graph`):
// the task's forward and loss under autocast, the backward, the gradient scaler's unscaling, the
// gradient clipping and AdamW (ATen's fused kernel with the learning rate and step counts as device
// tensors, as torch.optim.AdamW(fused=True, capturable=True) runs). Small models train
// launch-bound: a replay is one launch where the eager step is thousands. The batch is copied into
// the graph's own input tensors before each replay; the EMA update and the metrics stay outside.
#include <torch/optim/adamw.h>

#include <memory>
#include <vector>

#include "grad_scaler.h"
#include "sparsescope/vision/precision.h"
#include "sparsescope/vision/train_loop.h"

namespace sparsescope::vision::detail {

class GraphedStep {
 public:
  /// Throws sparsescope::Error when this build has no CUDA. `params` are the trained parameters,
  /// all of which reach a gradient; `adamw` their optimizer, its state made by eager steps before.
  GraphedStep(TrainTask& task, std::vector<at::Tensor> params, torch::optim::AdamW& adamw, GradScaler* scaler,
              double clip_grad, Precision precision, at::Device device);
  ~GraphedStep();
  GraphedStep(const GraphedStep&) = delete;
  GraphedStep& operator=(const GraphedStep&) = delete;

  /// One step on `batch` with group g at learning rate `lrs[g]`; the first call captures the graph
  /// (and runs it). The result's tensors are the graph's outputs, overwritten by the next call.
  StepResult run(const Batch& batch, const std::vector<double>& lrs);
  /// Writes the device step counts back into the optimizer's state (before it is checkpointed).
  void sync_optimizer_state();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace sparsescope::vision::detail
