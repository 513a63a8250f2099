// One instantiation per translation unit (STYLE.md 13): neighborhood forward, fp16, head dim 64.
#include "neighborhood_fwd.cuh"

namespace sparsescope::cuda {
template void run_neighborhood_fwd<false, 64>(const FwdParams&, cudaStream_t);
}  // namespace sparsescope::cuda
