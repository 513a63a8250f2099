// One instantiation per translation unit (STYLE.md 13): block sparse forward, bf16, head dim 128.
#include "block_sparse_fwd.cuh"

namespace sparsescope::cuda {
template void run_block_sparse_fwd<true, 128>(const FwdParams&, cudaStream_t);
}  // namespace sparsescope::cuda
