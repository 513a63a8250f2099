#pragma once
// What the recorder computes for one site and one batch item; separate from the Recorder's
// bookkeeping so that the arithmetic reads on its own.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::vision::detail {

/// The smallest square cell size p such that ceil(n / p) * ceil(m / p) <= budget.
int64_t pool_for(int64_t n, int64_t m, int64_t budget);

/// Mean over cells of pool x pool of the last two dims of x [P, n, m]; edge cells average the
/// entries they have. Returns [P, ceil(n / pool), ceil(m / pool)].
at::Tensor mean_pool(const at::Tensor& x, int64_t pool);

/// One attend() call of a site for one batch item: the whole site, or one of its parts.
struct PartInput {
  std::string name;  ///< empty: the whole site (then the only input)
  bool lse = false;  ///< SitePart::Merge::Lse
  at::Tensor q, k;   ///< [H, N_part, D], [H, M_part, D] (K/V heads expanded)
  /// The keys seen by the part's queries `rows` (int64 [R] on q's device): bool [H|1, R, M_part] on q's device.
  std::function<at::Tensor(const at::Tensor& rows)> keep;
  at::Tensor bias;     ///< [H|1, N_part, M_part] added to the scaled scores, or undefined
  at::Tensor gate;     ///< [H|1, N_part] weight of the part's output, or undefined (1)
  at::Tensor queries;  ///< int64 [N_part] site queries on q's device, or undefined (0..N_part-1)
  at::Tensor keys;     ///< int64 [M_part] site keys on q's device, or undefined (0..M_part-1)
  double scale = 1;
};

/// Fills everything of the SiteTrace of a site of n queries and m keys but its name, kind and
/// pattern, on the CPU (Note [recording memory]).
SiteTrace record_site(const std::vector<PartInput>& parts, int64_t n, int64_t m, const RecorderOptions& options);

/// The SiteTrace of a map handed over without attend(): values [H, rows, columns]; probs holds the
/// values, mask where they are non-zero, stats the density (recall and entropy NaN).
SiteTrace record_map(const at::Tensor& values, const RecorderOptions& options);

}  // namespace sparsescope::vision::detail
