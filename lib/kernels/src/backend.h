#pragma once
// What a backend of attend() sees and provides. See the design note in attend.cpp.
#include <ATen/core/Tensor.h>

#include <string>

#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/pattern.h"

namespace sparsescope::detail {

/// A checked attend() call: shapes, dtypes, devices and (on CPU) index values are valid.
struct AttendParams {
  const at::Tensor& q;
  const at::Tensor& k;
  const at::Tensor& v;
  const Pattern& pattern;
  double scale;
};

/// `can_use` answers for given params and, when it refuses, says why in `why_not` (ATen's
/// sdp_utils style); `run` is only called after `can_use` said yes.
struct Backend {
  const char* name;
  bool (*can_use)(const AttendParams& params, std::string* why_not);
  AttendResult (*run)(const AttendParams& params);
};

/// Runs checked params on the first backend that accepts them; backends that lower a pattern onto
/// another (Permuted) call back into it.
AttendResult dispatch(const AttendParams& params);

/// A Permuted call lowered onto its inner pattern: gathers q, k, v into the permuted order, runs
/// `run_inner` on the inner pattern and scatters the output and LSE back.
AttendResult lower_permuted(const AttendParams& params, AttendResult (*run_inner)(const AttendParams&));

}  // namespace sparsescope::detail

namespace sparsescope::detail {

/// attend_lse() with the message prefix of the op that called it (C++ API or a torch op).
AttendResult attend_impl(const char* prefix, const at::Tensor& q, const at::Tensor& k,
                         const at::Tensor& v, const Pattern& pattern, Probe* probe);

}  // namespace sparsescope::detail
