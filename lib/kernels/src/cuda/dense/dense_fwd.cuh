#pragma once
// Dense (optionally causal) forward: every key tile up to the last one a query of the tile can
// see. Masks apply to the tile holding key M - 1 when M is not a tile multiple, and to the tiles
// crossing the causal diagonal. Causal CTAs are scheduled heaviest first (the last query tiles
// see the most keys), which evens out the tail of the grid.
#include <c10/cuda/CUDAException.h>

#include "../common/flash_fwd.cuh"
#include "../common/launch.h"
#include "../common/static_switch.h"

namespace sparsescope::cuda {

template <int kBlockN>
struct DenseTiles {
  int end;     // one past the last key any query of the tile sees
  int qstart;  // the tile's first query
  bool causal;
  int current;
  __device__ int first() { return current = end > 0 ? 0 : -1; }
  __device__ int next() {
    current += kBlockN;
    return current < end ? current : -1;
  }
  __device__ bool needs_mask(int kstart) const {
    return kstart + kBlockN > end || (causal && kstart + kBlockN - 1 > qstart);
  }
};

template <typename Traits, bool kCausal>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocks) dense_fwd_kernel(const FwdParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) char smem[];
  const int tile =
      kCausal ? static_cast<int>(gridDim.x - 1 - blockIdx.x) : static_cast<int>(blockIdx.x);
  const int qstart = tile * Traits::kBlockM;
  const int b = static_cast<int>(blockIdx.z);
  const int h = static_cast<int>(blockIdx.y);
  int end = p.m;
  if (kCausal) {
    const int last_query = min(qstart + Traits::kBlockM, p.n) - 1;
    end = min(end, last_query + 1);  // top-left causal: key <= query
  }
  DenseTiles<Traits::kBlockN> tiles{end, qstart, kCausal, 0};
  attend_tile<Traits>(p, smem, qstart, b, h, tiles, [](int query, int key) {
    return !kCausal || mask::causal_visible(query, key);
  });
#else
  __trap();  // built for an architecture without bf16 mma.sync; can_use refuses such devices
#endif
}

template <bool kIsBf16, int kHeadDim>
void run_dense_fwd(const FwdParams& params, cudaStream_t stream) {
  using Traits = FwdTraits<kIsBf16, kHeadDim>;
  static_assert(Traits::kBlockM == kBlockM && Traits::kBlockN == kBlockN &&
                Traits::kTileSmemBytes == tile_smem_bytes(kHeadDim));
  const dim3 grid((params.n + Traits::kBlockM - 1) / Traits::kBlockM, params.heads, params.batch);
  constexpr int smem = Traits::kTileSmemBytes;
  SPARSESCOPE_BOOL_SWITCH(params.causal, kCausal, [&] {
    auto kernel = dense_fwd_kernel<Traits, kCausal>;
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    kernel<<<grid, Traits::kThreads, smem, stream>>>(params);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace sparsescope::cuda
