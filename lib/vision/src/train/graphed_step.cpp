#include "graphed_step.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>

#include "adamw_step.h"
#include "autocast.h"
#include "../graph_capture.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/train_optim.h"

#if defined(SPARSESCOPE_WITH_CUDA)
#include <ATen/cuda/CUDAGraph.h>
#endif

namespace sparsescope::vision::detail {

#if defined(SPARSESCOPE_WITH_CUDA)

struct GraphedStep::State {
  // One optimizer group: its parameters and moments, and its step count and learning rate as
  // device scalars the graph reads.
  struct Group {
    std::vector<at::Tensor> params, exp_avgs, exp_avg_sqs;
    at::Tensor step, lr;
    double beta1 = 0, beta2 = 0, weight_decay = 0, eps = 0;
  };

  TrainTask& task;
  std::vector<at::Tensor> params;
  torch::optim::AdamW& adamw;
  GradScaler* scaler;
  double clip_grad;
  Precision precision;
  at::Device device;
  std::vector<Group> groups;
  std::map<std::string, at::Tensor> inputs;  // the batch the graph reads
  int64_t batch_size = 0;
  StepResult result;  // the graph's outputs
  std::unique_ptr<at::cuda::CUDAGraph> graph;

  // The optimizer's update as torch.optim.AdamW(fused=True, capturable=True): the step counts
  // advance on the device, and fall back where the scaler found inf/NaN (the step is skipped).
  void step_optimizer() {
    c10::NoGradGuard no_grad;  // as adamw_step: the update is not part of any graph autograd records
    for (Group& g : groups) {
      if (g.params.empty()) continue;
      std::vector<at::Tensor> grads;
      for (const at::Tensor& p : g.params) grads.push_back(p.grad());
      g.step.add_(1);
      const std::vector<at::Tensor> steps(g.params.size(), g.step);
      at::_fused_adamw_(g.params, grads, g.exp_avgs, g.exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, g.lr, g.beta1,
                        g.beta2, g.weight_decay, g.eps, /*amsgrad=*/false, /*maximize=*/false,
                        /*grad_scale=*/std::nullopt,
                        scaler ? std::optional<at::Tensor>(scaler->found_inf()) : std::nullopt);
      if (scaler) g.step.sub_(scaler->found_inf().view({}));
    }
  }

  void capture(const Batch& batch) {
    for (const auto& [name, tensor] : batch.tensors) inputs.emplace(name, tensor.clone());
    batch_size = batch.size;
    const Batch captured{inputs, batch.size};
    // The backward inside the capture allocates the gradients from the graph's memory, where
    // every replay writes them.
    for (at::Tensor& p : params) p.mutable_grad() = at::Tensor();
    graph = std::make_unique<at::cuda::CUDAGraph>();
    detail::capture_graph(*graph, device.index(), [&] {
      const char* part = "the task's forward";  // named in the error
      try {
        {
          AutocastGuard autocast(device.type(), precision, /*cache=*/false);
          result = task.step(captured);
        }
        part = "the backward";
        (scaler ? scaler->scale(result.loss) : result.loss).backward();
        part = "the gradient unscaling";
        if (scaler) scaler->unscale(params);
        part = "the gradient clipping";
        if (clip_grad > 0) clip_grad_norm(params, clip_grad);
        part = "the AdamW update";
        step_optimizer();
        part = "the loss-scale update";
        if (scaler) scaler->update();
      } catch (const std::exception& e) {
        SPARSESCOPE_FAIL("--cuda-graph: the training step could not be captured as a CUDA graph (it must launch "
                         "device work only, with no host reads of device values or host-to-device copies); ",
                         part, " failed: ", e.what());
      }
    });
  }
};

GraphedStep::GraphedStep(TrainTask& task, std::vector<at::Tensor> params, torch::optim::AdamW& adamw,
                         GradScaler* scaler, double clip_grad, Precision precision, at::Device device)
    : s_(new State{task, std::move(params), adamw, scaler, clip_grad, precision, device, {}, {}, 0, {}, nullptr}) {
  SPARSESCOPE_CHECK(device.is_cuda(), "--cuda-graph: needs a CUDA device, not ", device);
  for (auto& group : adamw.param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    State::Group g;
    g.beta1 = std::get<0>(o.betas());
    g.beta2 = std::get<1>(o.betas());
    g.weight_decay = o.weight_decay();
    g.eps = o.eps();
    int64_t count = -1;
    for (const at::Tensor& p : group.params()) {
      // Made here when every eager step was skipped (float16 gradients that overflowed).
      const auto& s = adamw_state(adamw, p);
      SPARSESCOPE_CHECK(count < 0 || s.step() == count, "--cuda-graph: the parameters of an optimizer group ",
                        "have taken different numbers of steps (", count, " and ", s.step(), ")");
      count = s.step();
      g.params.push_back(p);
      g.exp_avgs.push_back(s.exp_avg());
      g.exp_avg_sqs.push_back(s.exp_avg_sq());
    }
    const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
    g.step = at::full({}, static_cast<double>(std::max<int64_t>(count, 0)), options);
    g.lr = at::zeros({}, options);
    s_->groups.push_back(std::move(g));
  }
}

GraphedStep::~GraphedStep() = default;

StepResult GraphedStep::run(const Batch& batch, const std::vector<double>& lrs) {
  State& s = *s_;
  SPARSESCOPE_CHECK(lrs.size() == s.groups.size(), "--cuda-graph: ", lrs.size(), " learning rates for ",
                    s.groups.size(), " optimizer groups");
  for (size_t g = 0; g < lrs.size(); ++g) s.groups[g].lr.fill_(lrs[g]);
  if (!s.graph) {
    s.capture(batch);
  } else {
    SPARSESCOPE_CHECK(batch.size == s.batch_size && batch.tensors.size() == s.inputs.size(),
                      "--cuda-graph: a batch of another size or other tensors than the captured one");
    for (const auto& [name, tensor] : batch.tensors) {
      at::Tensor& input = s.inputs.at(name);
      SPARSESCOPE_CHECK(input.sizes() == tensor.sizes() && input.scalar_type() == tensor.scalar_type(),
                        "--cuda-graph: batch tensor '", name, "' is ", tensor.scalar_type(), " ", tensor.sizes(),
                        ", the captured one ", input.scalar_type(), " ", input.sizes());
      input.copy_(tensor, /*non_blocking=*/true);
    }
  }
  s.graph->replay();
  return s.result;
}

void GraphedStep::sync_optimizer_state() {
  for (const State::Group& g : s_->groups) {
    const auto count = static_cast<int64_t>(std::llround(g.step.item<double>()));
    for (const at::Tensor& p : g.params) adamw_state(s_->adamw, p).step(count);
  }
}

#else

struct GraphedStep::State {};

GraphedStep::GraphedStep(TrainTask&, std::vector<at::Tensor>, torch::optim::AdamW&, GradScaler*, double, Precision,
                         at::Device) {
  SPARSESCOPE_FAIL("--cuda-graph: this build of sparsescope has no CUDA");
}
GraphedStep::~GraphedStep() = default;
StepResult GraphedStep::run(const Batch&, const std::vector<double>&) { return {}; }
void GraphedStep::sync_optimizer_state() {}

#endif

}  // namespace sparsescope::vision::detail
