#pragma once
// What the C++ benchmarks share: the dtype argument and the timing rule.
#include <torch/cuda.h>

#include <ATen/core/ScalarType.h>
#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "sparsescope/kernels/error.h"

namespace sparsescope::bench {

inline at::ScalarType parse_dtype(const std::string& s) {
  if (s == "fp32") return at::kFloat;
  if (s == "fp16") return at::kHalf;
  if (s == "bf16") return at::kBFloat16;
  SPARSESCOPE_FAIL("dtype: expected fp32, fp16 or bf16, got '", s, "'");
}

/// Milliseconds per call: the median over `rounds` rounds of `iters` calls, after 3 warm-up calls,
/// waiting for the device at the end of each round.
inline double median_ms(const std::function<void()>& call, const at::Device& device, int iters, int rounds = 7) {
  const auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  for (int i = 0; i < 3; ++i) call();
  sync();
  std::vector<double> ms;
  for (int round = 0; round < rounds; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) call();
    sync();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / iters);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace sparsescope::bench
