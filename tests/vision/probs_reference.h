#pragma once
// References shared by the recorder tests, computed in float64.
#include <ATen/ATen.h>

#include <limits>

namespace sparsescope::testing {

/// softmax(scale q k^T) over `keep` in float64, rows without keys 0.
inline at::Tensor reference_probs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& keep, double scale) {
  const at::Tensor s = at::matmul(q.to(at::kDouble), k.to(at::kDouble).transpose(-2, -1)) * scale;
  return at::softmax(s.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity()), -1).nan_to_num(0.0);
}

/// The largest absolute difference, in float64 on a's device.
inline double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble).to(a.device())).abs().max().item<double>();
}

}  // namespace sparsescope::testing
