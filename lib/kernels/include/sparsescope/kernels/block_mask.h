#pragma once
// Exchange of BlockSparse patterns with dense block masks, and through them with FlexAttention's
// BlockMask (whose kv_num_blocks/kv_indices/full_kv_* tensors are BlockSparse's fields as they are).
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "sparsescope/kernels/pattern.h"

namespace sparsescope {

/// The key blocks each query block sees, [B|1, H|1, ceil(N / block_q), num_k_blocks] bool: the union
/// of the partial and full blocks, as FlexAttention's BlockMask.to_dense().
at::Tensor to_block_mask(const BlockSparse& pattern, int64_t num_k_blocks);

/// The BlockSparse pattern of dense block masks [B|1, H|1, nq, nk] bool, in FlexAttention's exact
/// index layout (kv_index holds the listed blocks in ascending order, then the others; width nk;
/// int32), so a BlockMask built from the same masks has identical tensors. `full`, when defined,
/// must have the shape of `blocks` and fills full_kv_count/full_kv_index.
BlockSparse from_block_mask(const at::Tensor& blocks, int64_t block_q, int64_t block_k,
                            const at::Tensor& full = {});

}  // namespace sparsescope
