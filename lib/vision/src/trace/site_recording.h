#pragma once
// What the recorder does with one attend() call for one batch item; separate from the Recorder's
// bookkeeping so that the arithmetic reads on its own.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::vision::detail {

/// The smallest square cell size p such that ceil(n / p) * ceil(m / p) <= budget.
int64_t pool_for(int64_t n, int64_t m, int64_t budget);

/// Mean over cells of pool x pool of the last two dims of x [P, n, m]; edge cells average the
/// entries they have. Returns [P, ceil(n / pool), ceil(m / pool)].
at::Tensor mean_pool(const at::Tensor& x, int64_t pool);

/// q [H, N, D], k [H, M, D] of one batch item; keep [H|1, N, M] bool; bias [H|1, N, M] added to the
/// scaled scores, or undefined. Fills everything of the SiteTrace but name and pattern, on the CPU.
SiteTrace record_site(const at::Tensor& q, const at::Tensor& k, const at::Tensor& keep, const at::Tensor& bias,
                      double scale, const RecorderOptions& options);

}  // namespace sparsescope::vision::detail
