// Which of the build's fused-kernel images the current device can load: the question
// cudaFuncGetAttributes answers for a kernel compiled with the same flags as the real ones.
#include <cuda_runtime_api.h>

#include "launch.h"

namespace sparsescope::cuda {
namespace {
__global__ void arch_probe_kernel() {}
}  // namespace

int loadable_arch() {
  cudaFuncAttributes attributes{};
  if (cudaFuncGetAttributes(&attributes, arch_probe_kernel) != cudaSuccess) {
    (void)cudaGetLastError();  // no image for this device: an answer, not an error to keep
    return 0;
  }
  return attributes.binaryVersion;
}

}  // namespace sparsescope::cuda
