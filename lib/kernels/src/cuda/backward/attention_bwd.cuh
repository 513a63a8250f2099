#pragma once
// The fused backward of Dense (causal or not, no Dense.mask) and BlockSparse, each a QueryTiles
// policy over attend_bwd_tile (common/flash_bwd.cuh): one CTA per kBlockN keys of one (batch,
// head). Dense walks every query tile from the first that can see the key tile (causal: the
// diagonal's); BlockSparse walks the query blocks that list the key tile's block, from the
// transposed lists the host makes (BwdParams::q_count, q_index). Permuted over either comes with
// its RowMaps, as in the forward. The deterministic mode (BwdParams::deterministic) runs these
// without dQ and then a dQ pass per query tile that walks the forward's key tiles (DenseTiles,
// block_sparse_key_tiles).
#include "../block_sparse/block_sparse_fwd.cuh"
#include "../common/flash_bwd.cuh"
#include "../common/key_block_list.cuh"
#include "../common/launch.h"
#include "../common/static_switch.h"
#include "../dense/dense_fwd.cuh"

namespace sparsescope::cuda {

template <int kBlockM, int kBlockN>
struct DenseQueryTiles {
  int kstart, n, m;
  bool causal;
  int current;
  __device__ int first() {
    current = causal ? kstart / kBlockM * kBlockM : 0;  // top-left causal: queries before kstart see none
    return current < n ? current : -1;
  }
  __device__ int next() {
    current += kBlockM;
    return current < n ? current : -1;
  }
  __device__ bool needs_mask(int qstart) const {
    return kstart + kBlockN > m || (causal && qstart < kstart + kBlockN - 1);
  }
};

template <int kBlockM, int kBlockN>
struct BlockQueryTiles {
  BlockListTiles<kBlockM> walk;  // over query blocks: block size block_q, limit N
  int kstart, m;
  __device__ int first() { return walk.first(); }
  __device__ int next() { return walk.next(); }
  __device__ bool needs_mask(int) const { return kstart + kBlockN > m; }  // listed blocks are wholly visible
};

template <typename Traits, bool kCausal, bool kDq>
__global__ void __launch_bounds__(Traits::kThreads) dense_bwd_kernel(const BwdParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) char smem[];
  const int kstart = static_cast<int>(blockIdx.x) * Traits::kBlockN;
  DenseQueryTiles<Traits::kBlockM, Traits::kBlockN> tiles{kstart, p.fwd.n, p.fwd.m, kCausal, 0};
  attend_bwd_tile<Traits, kDq>(p, smem, kstart, static_cast<int>(blockIdx.z), static_cast<int>(blockIdx.y), tiles,
                               DenseVisible<kCausal>{});
#else
  __trap();  // built for an architecture without bf16 mma.sync; can_use refuses such devices
#endif
}

template <typename Traits, bool kDq>
__global__ void __launch_bounds__(Traits::kThreads) block_sparse_bwd_kernel(const BwdParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) char smem[];
  const int kstart = static_cast<int>(blockIdx.x) * Traits::kBlockN;
  const int b = static_cast<int>(blockIdx.z), h = static_cast<int>(blockIdx.y);
  const int block = kstart / p.fwd.block_k;
  const int count = p.q_count[b * p.q_count_batch_stride + h * p.q_count_head_stride + block];
  const int32_t* index =
      p.q_index + b * p.q_index_batch_stride + h * p.q_index_head_stride + block * p.q_index_row_stride;
  BlockQueryTiles<Traits::kBlockM, Traits::kBlockN> tiles{{index, count, p.fwd.block_q, p.fwd.n, 0, 0, 0},
                                                          kstart, p.fwd.m};
  attend_bwd_tile<Traits, kDq>(p, smem, kstart, b, h, tiles, [](int, int) { return true; });
#else
  __trap();
#endif
}

// The deterministic dQ passes: one CTA per forward query tile.
template <typename Traits, bool kCausal>
__global__ void __launch_bounds__(Traits::kThreads) dense_dq_kernel(const BwdParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) char smem[];
  const int qstart = static_cast<int>(blockIdx.x) * Traits::kBlockM;
  auto tiles = dense_key_tiles<Traits::kBlockM, Traits::kBlockN, kCausal>(p.fwd, qstart, false);
  attend_dq_tile<Traits>(p, smem, qstart, static_cast<int>(blockIdx.z), static_cast<int>(blockIdx.y), tiles,
                         DenseVisible<kCausal>{});
#else
  __trap();
#endif
}

template <typename Traits>
__global__ void __launch_bounds__(Traits::kThreads) block_sparse_dq_kernel(const BwdParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) char smem[];
  const int qstart = static_cast<int>(blockIdx.x) * Traits::kBlockM;
  const int b = static_cast<int>(blockIdx.z), h = static_cast<int>(blockIdx.y);
  auto tiles = block_sparse_key_tiles<Traits::kThreads, Traits::kBlockN>(p.fwd, smem + DqSmem<Traits>::kTiles, qstart, b, h);
  attend_dq_tile<Traits>(p, smem, qstart, b, h, tiles, [](int, int) { return true; });
#else
  __trap();
#endif
}

template <bool kIsBf16, int kHeadDim>
void run_attention_bwd(const BwdParams& params, cudaStream_t stream) {
  using Traits = BwdTraits<kIsBf16, kHeadDim>;
  using DqTraits = FwdTraits<kIsBf16, kHeadDim>;
  static_assert(Traits::kBlockN == kBwdBlockN && Traits::kSmemBytes == bwd_smem_bytes(kHeadDim) &&
                DqSmem<DqTraits>::kTiles == dq_smem_bytes(kHeadDim));
  const bool sparse = params.q_count != nullptr;
  auto launch = [&](auto kernel, dim3 grid, int threads, int smem) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    kernel<<<grid, threads, smem, stream>>>(params);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  };
  const dim3 key_grid((params.fwd.m + Traits::kBlockN - 1) / Traits::kBlockN, params.fwd.heads, params.fwd.batch);
  SPARSESCOPE_BOOL_SWITCH(!params.deterministic, kDq, [&] {
    if (sparse) {
      launch(block_sparse_bwd_kernel<Traits, kDq>, key_grid, Traits::kThreads, Traits::kSmemBytes);
    } else {
      SPARSESCOPE_BOOL_SWITCH(params.fwd.causal, kCausal, [&] {
        launch(dense_bwd_kernel<Traits, kCausal, kDq>, key_grid, Traits::kThreads, Traits::kSmemBytes);
      });
    }
  });
  if (!params.deterministic) return;
  const dim3 query_grid((params.fwd.n + DqTraits::kBlockM - 1) / DqTraits::kBlockM, params.fwd.heads, params.fwd.batch);
  if (sparse) {
    launch(block_sparse_dq_kernel<DqTraits>, query_grid, DqTraits::kThreads,
           DqSmem<DqTraits>::kTiles + block_list_smem_bytes(params.fwd.num_k_blocks));
  } else {
    SPARSESCOPE_BOOL_SWITCH(params.fwd.causal, kCausal, [&] {
      launch(dense_dq_kernel<DqTraits, kCausal>, query_grid, DqTraits::kThreads, DqSmem<DqTraits>::kTiles);
    });
  }
}

}  // namespace sparsescope::cuda
