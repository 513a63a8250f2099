#pragma once
#include <string>

namespace sparsescope {

/// Library version ("0.1.0"), as recorded in traces and printed by `sparsescope --version`.
std::string version();

/// LibTorch version the library was built against, and whether CUDA kernels were compiled in.
std::string torch_version();
bool built_with_cuda();

}  // namespace sparsescope
