#include "adamw_step.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <map>
#include <tuple>
#include <vector>

#include "host_to_device.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision::detail {

torch::optim::AdamWParamState& adamw_state(torch::optim::AdamW& optimizer, const at::Tensor& param) {
  auto& slot = optimizer.state()[param.unsafeGetTensorImpl()];
  if (!slot) {
    auto fresh = std::make_unique<torch::optim::AdamWParamState>();
    fresh->step(0);
    fresh->exp_avg(at::zeros_like(param, at::MemoryFormat::Preserve));
    fresh->exp_avg_sq(at::zeros_like(param, at::MemoryFormat::Preserve));
    slot = std::move(fresh);
  }
  return static_cast<torch::optim::AdamWParamState&>(*slot);
}

void adamw_step(torch::optim::AdamW& optimizer) {
  c10::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    SPARSESCOPE_CHECK(!o.amsgrad(), "adamw_step: amsgrad is not supported");
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
    std::map<int64_t, at::Tensor> step_values;  // one device scalar per distinct step count
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& s = adamw_state(optimizer, p);
      s.step(s.step() + 1);  // the kernel reads the count including this step, as torch.optim does
      auto it = step_values.find(s.step());
      if (it == step_values.end()) {
        it = step_values
                 .emplace(s.step(), to_device_async(at::scalar_tensor(static_cast<double>(s.step()), at::kFloat),
                                                    p.device()))
                 .first;
      }
      params.push_back(p);
      grads.push_back(p.grad());
      exp_avgs.push_back(s.exp_avg());
      exp_avg_sqs.push_back(s.exp_avg_sq());
      steps.push_back(it->second);
    }
    if (params.empty()) continue;
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, o.lr(),
                      std::get<0>(o.betas()), std::get<1>(o.betas()), o.weight_decay(), o.eps(),
                      /*amsgrad=*/false, /*maximize=*/false);
  }
}

}  // namespace sparsescope::vision::detail
