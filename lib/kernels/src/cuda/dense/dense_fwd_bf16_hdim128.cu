// One instantiation per translation unit (STYLE.md 13): dense forward, bf16, head dim 128.
#include "dense_fwd.cuh"

namespace sparsescope::cuda {
template void run_dense_fwd<true, 128>(const FwdParams&, cudaStream_t);
}  // namespace sparsescope::cuda
