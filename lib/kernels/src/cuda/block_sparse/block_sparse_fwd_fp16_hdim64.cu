// One instantiation per translation unit (STYLE.md 13): block sparse forward, fp16, head dim 64.
#include "block_sparse_fwd.cuh"

namespace sparsescope::cuda {
template void run_block_sparse_fwd<false, 64>(const FwdParams&, cudaStream_t);
}  // namespace sparsescope::cuda
