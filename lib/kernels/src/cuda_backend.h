#pragma once
// The fused CUDA backends of attend() (built with SPARSESCOPE_WITH_CUDA). Each can_use says why it
// refuses (device, architecture, dtype, head dim, strides, pattern); each run launches the fused
// forward kernel of src/cuda/ and, when autograd needs it, records a backward that recomputes the
// reference (masked attention through ATen) and differentiates it.
#include <string>

#include "backend.h"

namespace sparsescope::cuda_backend {

/// The binary version of the build's kernels that `device` loads (cuda::loadable_arch), 0 when
/// none; asked once per device.
int arch_of(int device);

bool can_use_dense(const detail::AttendParams& params, std::string* why_not);
AttendResult run_dense(const detail::AttendParams& params);

bool can_use_block_sparse(const detail::AttendParams& params, std::string* why_not);
AttendResult run_block_sparse(const detail::AttendParams& params);

bool can_use_topk(const detail::AttendParams& params, std::string* why_not);
AttendResult run_topk(const detail::AttendParams& params);

bool can_use_neighborhood(const detail::AttendParams& params, std::string* why_not);
AttendResult run_neighborhood(const detail::AttendParams& params);

/// Permuted over a pattern one of the kernels above takes, its permutation fused into the loads and
/// stores.
bool can_use_permuted(const detail::AttendParams& params, std::string* why_not);
AttendResult run_permuted(const detail::AttendParams& params);

}  // namespace sparsescope::cuda_backend
