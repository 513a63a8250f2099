#pragma once
// The top-k keys of a sparse low-rank attention estimate, without the N x N estimate: a mask
// predictor that scores each query's keys as a combination of a few rows of a basis keeps the k
// best.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sparsescope {

/// For every row r of (b, h): the indices of the k largest entries of
///   score[n] = sum_t values[b, h, r, t] * basis[slots[b, h, r, t], n],   n < N,
/// in no particular order and distinct (ties broken towards the lower index), as int64
/// [B, H, R, min(k, N)]. values [B, H, R, T] floating, slots [B, H, R, T] int64 in [0, S), basis
/// [S, N] floating, on one device. Scores are computed in float32. On CUDA (built with CUDA, T <= 32)
/// a fused kernel computes each row's scores in shared memory and selects by a radix select, never
/// materialising [B, H, R, N]; elsewhere the reference. Throws sparsescope::Error naming the
/// argument at fault.
at::Tensor basis_topk(const at::Tensor& values, const at::Tensor& slots, const at::Tensor& basis, int64_t k);

/// The reference, on any device: the scores materialised in float32 and at::topk.
at::Tensor basis_topk_reference(const at::Tensor& values, const at::Tensor& slots, const at::Tensor& basis, int64_t k);

}  // namespace sparsescope
