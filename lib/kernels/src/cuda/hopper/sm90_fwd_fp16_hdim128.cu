// One instantiation per translation unit (STYLE.md 13): the Hopper forward, fp16, head dim 128.
#include "hopper_fwd.cuh"

namespace sparsescope::cuda {
template void run_sm90_fwd<false, 128>(const FwdParams&, Sm90Pattern, cudaStream_t);
}  // namespace sparsescope::cuda
