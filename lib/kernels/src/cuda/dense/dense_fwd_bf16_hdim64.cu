// One instantiation per translation unit (STYLE.md 13): dense forward, bf16, head dim 64.
#include "dense_fwd.cuh"

namespace sparsescope::cuda {
template void run_dense_fwd<true, 64>(const FwdParams&, cudaStream_t);
}  // namespace sparsescope::cuda
