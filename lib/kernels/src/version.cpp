#include "sparsescope/kernels/version.h"

#include <torch/version.h>

namespace sparsescope {

std::string version() { return SPARSESCOPE_VERSION_STRING; }

std::string torch_version() { return TORCH_VERSION; }

bool built_with_cuda() {
#ifdef SPARSESCOPE_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace sparsescope
