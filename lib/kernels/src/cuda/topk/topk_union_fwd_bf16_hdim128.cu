// One instantiation per translation unit (STYLE.md 13): TopK on tensor cores, bf16, head dim 128.
#include "topk_union_fwd.cuh"

namespace sparsescope::cuda {
template void run_topk_union_fwd<true, 128>(const FwdParams&, cudaStream_t);
}  // namespace sparsescope::cuda
