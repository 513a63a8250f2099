#pragma once
// A fixed-shape forward pass captured once as a CUDA graph and replayed: the launch-free path for
// callers that run one shape over and over (infer's full batches, the benchmarks). Small models at
// moderate batches are bound by the host's per-operator launches, which a replay does not pay.
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace sparsescope::vision {

class GraphedForward {
 public:
  /// Runs `forward` eagerly `warmup` times on `example` (cuBLAS handles and workspaces must exist
  /// before a capture), then captures one call on a side stream, as torch.cuda.graph does. `forward`
  /// must launch device work only (no host reads of device values, no recording probes). Throws
  /// sparsescope::Error for an example that is not on a CUDA device or a build without CUDA.
  GraphedForward(std::function<at::Tensor(const at::Tensor&)> forward, const at::Tensor& example, int warmup = 3);
  ~GraphedForward();
  GraphedForward(const GraphedForward&) = delete;
  GraphedForward& operator=(const GraphedForward&) = delete;

  /// Whether `input` has the captured shape, dtype and device.
  bool matches(const at::Tensor& input) const;
  /// forward(input) by replay (input: matches(); else sparsescope::Error). The result lives in the
  /// graph's memory and the next call overwrites it: clone it to keep it.
  at::Tensor operator()(const at::Tensor& input);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace sparsescope::vision
