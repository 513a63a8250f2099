// One instantiation per translation unit (STYLE.md 13): the fused backward, fp16, head dim 128.
#include "attention_bwd.cuh"

namespace sparsescope::cuda {
template void run_attention_bwd<false, 128>(const BwdParams&, cudaStream_t);
}  // namespace sparsescope::cuda
