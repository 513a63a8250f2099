// Whether the current device loads this directory's sm_90a image (an sm_90 device does, no other):
// cudaFuncGetAttributes on a kernel compiled with the same flags as the Hopper forward.
#include <cuda_runtime_api.h>

#include "../common/launch.h"

namespace sparsescope::cuda {
namespace {
__global__ void sm90_probe_kernel() {}
}  // namespace

bool sm90_fwd_loadable() {
  cudaFuncAttributes attributes{};
  if (cudaFuncGetAttributes(&attributes, sm90_probe_kernel) != cudaSuccess) {
    (void)cudaGetLastError();  // no image for this device: an answer, not an error to keep
    return false;
  }
  return attributes.binaryVersion == 90;
}

}  // namespace sparsescope::cuda
