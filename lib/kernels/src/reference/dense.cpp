#include <ATen/ATen.h>

#include "../mask_tensors.h"
#include "reference.h"

namespace sparsescope::reference {

AttendResult dense(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const Dense& p,
                   double scale) {
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) * scale;  // [B, H, N, M]
  at::Tensor keep;
  if (p.causal) keep = detail::causal_keep(q.size(2), k.size(2), q.device());
  if (p.mask.defined()) {
    if (p.mask.scalar_type() == at::kBool)
      keep = keep.defined() ? keep.logical_and(p.mask) : p.mask;
    else
      scores = scores + p.mask.to(scores.scalar_type());
  }
  return softmax_attention(scores, keep, v);
}

}  // namespace sparsescope::reference
