// Whether the current device loads this directory's sm_90a image (an sm_90 device does, no other).
#include "../common/launch.h"

namespace sparsescope::cuda {
namespace {
__global__ void sm90_probe_kernel() {}
}  // namespace

bool sm90_fwd_loadable() { return image_version(reinterpret_cast<const void*>(sm90_probe_kernel)) == 90; }

}  // namespace sparsescope::cuda
