// One instantiation per translation unit (STYLE.md 13): the Hopper forward, bf16, head dim 64.
#include "hopper_fwd.cuh"

namespace sparsescope::cuda {
template void run_sm90_fwd<true, 64>(const FwdParams&, Sm90Pattern, cudaStream_t);
}  // namespace sparsescope::cuda
