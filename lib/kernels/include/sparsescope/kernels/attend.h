#pragma once
// The one attention entry point (DESIGN.md section 3).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sparsescope/kernels/pattern.h"

namespace sparsescope {

class Probe;

struct AttendResult {
  at::Tensor out;  ///< [B, H, N, Dv], dtype of q
  at::Tensor lse;  ///< [B, H, N] natural-log log-sum-exp of the scaled scores over the keys seen;
                   ///< float32 (float64 for float64 inputs); -inf where a query sees no key
};

/// softmax(scale * q k^T restricted to the pattern) v for q [B, H, N, D], k [B, H_kv, M, D],
/// v [B, H_kv, M, Dv] of one dtype (float32, float64, float16, bfloat16; the halves are computed in
/// float32) on one device. A query that sees no key gets output 0 (and LSE -inf). Differentiable
/// with respect to q, k, v and a floating Dense mask. Throws sparsescope::Error naming the argument.
/// `probe`, when given, is called before computing. H_kv may divide H (grouped-query attention:
/// K/V head j serves the query heads j * H / H_kv ... (j + 1) * H / H_kv - 1).
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const Pattern& pattern, Probe* probe = nullptr);

/// attend() plus the log-sum-exp per query, to merge partial results or measure recall.
AttendResult attend_lse(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const Pattern& pattern, Probe* probe = nullptr);

/// k or v [B, H_kv, M, D] as [B, heads, M, D] under grouped-query attention (each K/V head repeated
/// for its heads / H_kv query heads); the tensor itself when H_kv == heads. Differentiable.
at::Tensor expand_kv_heads(const at::Tensor& kv, int64_t heads);

/// The keys each query sees, as a dense bool mask [B|1, H|1, n, m] (1 where the pattern's tensors
/// are shared over batch or heads), on the device of the pattern's tensors (CPU if it has none).
/// Meant for small n * m: tests, the viewer, recall.
at::Tensor materialize(const Pattern& pattern, int64_t n, int64_t m);

/// Rows of materialize(): the keys seen by the queries `rows`, int64 [R] or [B|1, H|1, R] (rows
/// chosen per batch item and head) in [0, n), as a bool mask [B|1, H|1, R, m]. Holds R * m cells,
/// so that a recorder can walk an [n, m] mask in chunks.
at::Tensor materialize_rows(const Pattern& pattern, int64_t n, int64_t m, const at::Tensor& rows);

/// One backend of attend() for given inputs: whether it would run them, and if not, why.
struct BackendChoice {
  std::string name;
  bool usable = false;
  std::string why_not;
};

/// The backends in the order attend() tries them; it runs the first usable one.
std::vector<BackendChoice> backend_choices(const at::Tensor& q, const at::Tensor& k,
                                           const at::Tensor& v, const Pattern& pattern);

}  // namespace sparsescope
