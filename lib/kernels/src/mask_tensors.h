#pragma once
// mask.h's definitions laid out as tensors, for materialize() and the reference backend. Built on
// the host by calling the mask.h functions themselves, then moved to the requested device.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "sparsescope/kernels/pattern.h"

namespace sparsescope::detail {

/// [n, m] bool: mask::causal_visible.
at::Tensor causal_keep(int64_t n, int64_t m, at::Device device);

/// rows [...] int64 -> [..., m] bool: mask::causal_visible of each query in `rows`.
at::Tensor causal_keep_rows(const at::Tensor& rows, int64_t m);

/// [tokens] int64: mask::block_of for every token.
at::Tensor token_blocks(int64_t tokens, int64_t block_size, at::Device device);

/// Each list along the last dim of `lists` (int64, mask::kNoKey for no entry) sorted, with repeated
/// entries replaced by mask::kNoKey: key lists become sets.
at::Tensor unique_lists(const at::Tensor& lists);

/// [B|1, H|1, ceil(N / block_q), K] int64: the keys each query block sees (union of the partial and
/// full blocks, each block once, keys past m dropped), mask::kNoKey padded.
at::Tensor block_key_lists(const BlockSparse& pattern, int64_t m);

/// [N, prod(kernel)] int64: the keys each query sees, mask::kNoKey padded (causal windows are short
/// near the start).
at::Tensor neighborhood_key_lists(const Neighborhood& pattern);

/// rows [...] int64 -> [..., N] bool: mask::neighborhood_visible on every axis for each query in `rows`.
at::Tensor neighborhood_keep_rows(const Neighborhood& pattern, const at::Tensor& rows);

}  // namespace sparsescope::detail
