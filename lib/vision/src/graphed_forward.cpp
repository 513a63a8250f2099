#include "sparsescope/vision/graphed_forward.h"

#include <ATen/ATen.h>

#include "graph_capture.h"
#include "sparsescope/kernels/error.h"

#if defined(SPARSESCOPE_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace sparsescope::vision {

#if defined(SPARSESCOPE_WITH_CUDA)

namespace detail {

void capture_graph(at::cuda::CUDAGraph& graph, c10::DeviceIndex device, const std::function<void()>& body) {
  const auto current = at::cuda::getCurrentCUDAStream(device);
  const auto side = at::cuda::getStreamFromPool(/*isHighPriority=*/false, device);
  at::cuda::CUDAEvent ready, done;
  ready.record(current);
  ready.block(side);
  {
    const c10::cuda::CUDAStreamGuard guard(side);
    graph.capture_begin();
    body();
    graph.capture_end();
  }
  done.record(side);
  done.block(current);
}

}  // namespace detail

struct GraphedForward::State {
  at::Tensor input, output;  // the graph's buffers
  at::cuda::CUDAGraph graph;
};

GraphedForward::GraphedForward(std::function<at::Tensor(const at::Tensor&)> forward, const at::Tensor& example,
                               int warmup) {
  SPARSESCOPE_CHECK(example.defined() && example.is_cuda(), "CUDA graph: needs an input on a CUDA device, not ",
                    example.defined() ? example.device().str() : std::string("an undefined tensor"));
  const c10::cuda::CUDAGuard guard(example.device());
  s_ = std::make_unique<State>();  // a CUDAGraph needs the device
  s_->input = example.clone();
  for (int i = 0; i < warmup; ++i) forward(s_->input);
  detail::capture_graph(s_->graph, example.device().index(), [&] { s_->output = forward(s_->input); });
}

bool GraphedForward::matches(const at::Tensor& input) const {
  return input.defined() && input.sizes() == s_->input.sizes() && input.scalar_type() == s_->input.scalar_type() &&
         input.device() == s_->input.device();
}

at::Tensor GraphedForward::operator()(const at::Tensor& input) {
  SPARSESCOPE_CHECK(matches(input), "CUDA graph: captured for ", s_->input.scalar_type(), " ", s_->input.sizes(),
                    " on ", s_->input.device(), ", given ", input.scalar_type(), " ", input.sizes(), " on ",
                    input.device());
  s_->input.copy_(input, /*non_blocking=*/true);
  s_->graph.replay();
  return s_->output;
}

#else

struct GraphedForward::State {};

GraphedForward::GraphedForward(std::function<at::Tensor(const at::Tensor&)>, const at::Tensor&, int) {
  SPARSESCOPE_FAIL("CUDA graph: this build of sparsescope has no CUDA");
}
bool GraphedForward::matches(const at::Tensor&) const { return false; }
at::Tensor GraphedForward::operator()(const at::Tensor&) { return {}; }

#endif

GraphedForward::~GraphedForward() = default;

}  // namespace sparsescope::vision
