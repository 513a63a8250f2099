#pragma once
// Input validation shared by every op. Each op passes its own message prefix (one constant per op,
// STYLE.md 3), and checks run in a fixed order over all arguments: device, dtype, layout, shape,
// then (CPU only, where reading them costs no device sync) the values of index tensors.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "sparsescope/kernels/pattern.h"

namespace sparsescope::detail {

/// "[2, 5, 8]"
std::string shape_string(at::IntArrayRef sizes);

void check_defined(const char* prefix, const char* name, const at::Tensor& t);
void check_device(const char* prefix, const char* name, const at::Tensor& t, at::Device device,
                  const char* device_of);
void check_strided(const char* prefix, const char* name, const at::Tensor& t);
/// "expected 4-D `query` [B, H, N, D], got 3-D tensor [2, 5, 8]"
void check_dim(const char* prefix, const char* name, const at::Tensor& t, int64_t dim,
               const char* layout);
/// Size `dim` of `t` must be `expected` (or 1 when `broadcast`); `what` names the expectation.
void check_size(const char* prefix, const char* name, const at::Tensor& t, const char* layout,
                int64_t dim, int64_t expected, const std::string& what, bool broadcast = false);

/// All checks of attend() for one pattern, in the fixed order; `prefix` names the op.
void check_attend(const char* prefix, const at::Tensor& q, const at::Tensor& k,
                  const at::Tensor& v, const Pattern& pattern);

/// Checks of a pattern alone against n queries and m keys (materialize()); the device of its
/// tensors is the first one's.
void check_pattern(const char* prefix, const Pattern& pattern, int64_t n, int64_t m);

}  // namespace sparsescope::detail
