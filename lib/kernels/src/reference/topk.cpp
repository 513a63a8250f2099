#include <ATen/ATen.h>

#include "../mask_tensors.h"
#include "reference.h"

namespace sparsescope::reference {

AttendResult topk(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const TopK& p,
                  double scale) {
  return gathered_attention(q, k, v, detail::unique_lists(p.index), 1, scale);
}

}  // namespace sparsescope::reference
