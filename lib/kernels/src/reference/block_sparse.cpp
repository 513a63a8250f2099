#include <ATen/ATen.h>

#include "../mask_tensors.h"
#include "reference.h"

namespace sparsescope::reference {

// Each query block attends to its own key list: memory is (N / block_q) x listed keys, not N x M.
AttendResult block_sparse(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const BlockSparse& p, double scale) {
  const at::Tensor lists = detail::block_key_lists(p, k.size(2));
  return gathered_attention(q, k, v, lists, p.block_q, scale);
}

}  // namespace sparsescope::reference
