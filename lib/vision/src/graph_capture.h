#pragma once
// How the library captures CUDA graphs (GraphedForward, the trainer's GraphedStep).
#if defined(SPARSESCOPE_WITH_CUDA)
#include <ATen/cuda/CUDAGraph.h>
#include <c10/core/Device.h>

#include <functional>

namespace sparsescope::vision::detail {

/// Captures body() into `graph` on a side stream of `device` that waits for the current stream's
/// work, and makes the current stream wait for the capture, as torch.cuda.graph does.
void capture_graph(at::cuda::CUDAGraph& graph, c10::DeviceIndex device, const std::function<void()>& body);

}  // namespace sparsescope::vision::detail
#endif
