// One instantiation per translation unit (STYLE.md 13): TopK backward, bf16, head dim 128.
#include "topk_bwd.cuh"

namespace sparsescope::cuda {
template void run_topk_bwd<true, 128>(const BwdParams&, cudaStream_t);
}  // namespace sparsescope::cuda
