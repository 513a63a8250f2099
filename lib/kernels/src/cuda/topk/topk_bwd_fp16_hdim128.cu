// One instantiation per translation unit (STYLE.md 13): TopK backward, fp16, head dim 128.
#include "topk_bwd.cuh"

namespace sparsescope::cuda {
template void run_topk_bwd<false, 128>(const BwdParams&, cudaStream_t);
}  // namespace sparsescope::cuda
