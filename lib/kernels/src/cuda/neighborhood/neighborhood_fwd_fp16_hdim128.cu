// One instantiation per translation unit (STYLE.md 13): neighborhood forward, fp16, head dim 128.
#include "neighborhood_fwd.cuh"

namespace sparsescope::cuda {
template void run_neighborhood_fwd<false, 128>(const FwdParams&, cudaStream_t);
}  // namespace sparsescope::cuda
