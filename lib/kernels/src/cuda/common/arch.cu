// Which of the build's fused-kernel images the current device can load: the question
// cudaFuncGetAttributes answers for a kernel compiled with the same flags as the real ones.
#include "launch.h"

namespace sparsescope::cuda {
namespace {
__global__ void arch_probe_kernel() {}
}  // namespace

int loadable_arch() { return image_version(reinterpret_cast<const void*>(arch_probe_kernel)); }

}  // namespace sparsescope::cuda
