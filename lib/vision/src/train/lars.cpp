#include "lars.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

namespace sparsescope::vision::detail {

at::Tensor Lars::step(LossClosure closure) {
  at::Tensor loss;
  if (closure) {
    at::AutoGradMode enable(true);
    loss = closure();
  }
  at::NoGradGuard no_grad;
  for (auto& group : param_groups()) {
    const auto& o = static_cast<const LarsOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      at::Tensor d = p.grad();
      if (p.dim() > 1) {
        d = d.add(p, o.weight_decay());
        const at::Tensor param_norm = at::linalg_vector_norm(p), update_norm = at::linalg_vector_norm(d);
        const at::Tensor one = at::ones_like(param_norm);
        const at::Tensor q = at::where(param_norm > 0,
                                       at::where(update_norm > 0, o.trust_coefficient() * param_norm / update_norm, one), one);
        d = d.mul(q);
      }
      auto& slot = state()[p.unsafeGetTensorImpl()];
      if (!slot) {
        auto fresh = std::make_unique<LarsParamState>();
        fresh->mu(at::zeros_like(p));
        slot = std::move(fresh);
      }
      at::Tensor mu = static_cast<LarsParamState&>(*slot).mu();
      mu.mul_(o.momentum()).add_(d);
      p.add_(mu, -o.lr());
    }
  }
  return loss;
}

}  // namespace sparsescope::vision::detail
