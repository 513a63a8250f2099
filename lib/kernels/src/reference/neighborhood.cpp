#include <ATen/ATen.h>

#include "../mask_tensors.h"
#include "reference.h"

namespace sparsescope::reference {

AttendResult neighborhood(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const Neighborhood& p, double scale) {
  const at::Tensor lists = detail::neighborhood_key_lists(p).to(q.device());  // [N, window]
  return gathered_attention(q, k, v, lists.unsqueeze(0).unsqueeze(0), 1, scale);
}

}  // namespace sparsescope::reference
