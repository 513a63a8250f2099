#pragma once
#include <torch/optim/adamw.h>

namespace sparsescope::vision::detail {

/// One step of `optimizer` (its groups, options and per-parameter state, which checkpoints save)
/// through ATen's fused AdamW kernel, the one torch.optim.AdamW(fused=True) runs: one multi-tensor
/// launch per group instead of LibTorch's nine ops per parameter. Small models train launch-bound,
/// and the per-parameter loop took about as long as the forward and backward passes together.
/// Same update (decoupled weight decay, bias-corrected moments; amsgrad is not supported).
void adamw_step(torch::optim::AdamW& optimizer);

/// The AdamW state of `param`, made (step 0, zero moments) when it has none yet, as torch.optim's
/// first step makes it.
torch::optim::AdamWParamState& adamw_state(torch::optim::AdamW& optimizer, const at::Tensor& param);

}  // namespace sparsescope::vision::detail
