#pragma once
// The reference backend: every pattern written with differentiable ATen ops, so it runs on any
// device, is autograd's path for training on CPU, and is what the fused kernels are tested
// against. It reads the keys each query sees from mask.h, like the kernels do.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "../backend.h"

namespace sparsescope::reference {

/// Softmax attention over `scores` [..., Q, K] (working precision) where `keep` (bool,
/// broadcastable, or undefined = all) is true, times `v` [..., K, Dv]. Rows that keep no finite
/// score give output 0 and LSE -inf, with zero (never NaN) gradients.
AttendResult softmax_attention(const at::Tensor& scores, const at::Tensor& keep, const at::Tensor& v);

/// Attention where groups of `group` consecutive queries share one key list: `index`
/// [B|1, H|1, G, K] int64 with G = ceil(N / group), entries mask::kNoKey skipped, no duplicates
/// within a list. q [B, H, N, D], k [B, H, M, D], v [B, H, M, Dv] in working precision.
AttendResult gathered_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& index, int64_t group, double scale);

/// float64 stays float64, everything else is computed in float32.
at::ScalarType working_dtype(at::ScalarType input);

/// Per pattern; inputs in working precision, outputs likewise (the backend casts back).
AttendResult dense(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const Dense& p,
                   double scale);
AttendResult block_sparse(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const BlockSparse& p, double scale);
AttendResult topk(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const TopK& p,
                  double scale);
AttendResult neighborhood(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const Neighborhood& p, double scale);

/// The backend entry: any device, every pattern but Permuted (which the dispatcher lowers).
bool can_use(const detail::AttendParams& params, std::string* why_not);
AttendResult run(const detail::AttendParams& params);

}  // namespace sparsescope::reference
