// One instantiation per translation unit (STYLE.md 13): topk forward, fp16, head dim 64.
#include "topk_fwd.cuh"

namespace sparsescope::cuda {
template void run_topk_fwd<false, 64>(const FwdParams&, cudaStream_t);
}  // namespace sparsescope::cuda
