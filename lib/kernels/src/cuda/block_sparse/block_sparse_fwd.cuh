#pragma once
// BlockSparse forward on FlexAttention's BlockMask layout. A CTA owns kBlockM queries, all inside
// one query block (block_q is a multiple of kBlockM), and first turns that block's lists into the
// set of key blocks it sees: every listed block (partial and full alike; without a mask_mod both
// are wholly visible) goes into the CTA's key-block list (common/key_block_list.cuh), where
// repeated blocks count once. The tensor-core main loop then visits the kBlockN-key tiles of those
// blocks. Only the tile holding key M - 1 needs an element mask. Indices outside [0, ceil(M / block_k)) and counts outside [0, W] are clamped away rather
// than read past: the CPU checks them, the GPU path trusts them but stays in bounds.
#include "../common/flash_fwd.cuh"
#include "../common/key_block_list.cuh"
#include "../common/launch.h"

namespace sparsescope::cuda {

// Sets the bit of every listed key block of one query block's (count, index) pair.
__device__ __forceinline__ void mark_blocks(uint32_t* bits, const int32_t* count,
                                            const int32_t* index, int64_t col_stride, int width,
                                            int num_k_blocks, int tid, int threads) {
  const int listed = min(max(*count, 0), width);
  for (int j = tid; j < listed; j += threads) {
    const int block = index[j * col_stride];
    if (block >= 0 && block < num_k_blocks) mark_block(bits, block);
  }
}

// The key tiles of the query tile at qstart (inside one query block): its block row's listed blocks,
// partial and full, each once, as a list in `list_smem` (block_list_smem_bytes(p.num_k_blocks)).
// Every thread of the CTA calls it.
template <int kThreads, int kBlockN>
__device__ __forceinline__ BlockListTiles<kBlockN> block_sparse_key_tiles(const FwdParams& p, char* list_smem,
                                                                          int qstart, int b, int h) {
  const int words = (p.num_k_blocks + 31) / 32;
  uint32_t* bits = reinterpret_cast<uint32_t*>(list_smem);
  int* list = reinterpret_cast<int*>(bits + words);
  int* list_count = list + p.num_k_blocks;
  const int row = qstart / p.block_q;
  const int tid = static_cast<int>(threadIdx.x);

  for (int w = tid; w < words; w += kThreads) bits[w] = 0;
  __syncthreads();
  mark_blocks(bits, p.kv_count + b * p.count_batch_stride + h * p.count_head_stride + row * p.count_row_stride,
              p.kv_index + b * p.index_batch_stride + h * p.index_head_stride + row * p.index_row_stride,
              p.index_col_stride, p.index_width, p.num_k_blocks, tid, kThreads);
  if (p.full_kv_count != nullptr)
    mark_blocks(bits,
                p.full_kv_count + b * p.full_count_batch_stride + h * p.full_count_head_stride +
                    row * p.full_count_row_stride,
                p.full_kv_index + b * p.full_index_batch_stride + h * p.full_index_head_stride +
                    row * p.full_index_row_stride,
                p.full_index_col_stride, p.full_index_width, p.num_k_blocks, tid, kThreads);
  __syncthreads();
  compact_blocks(bits, words, list, list_count, tid);
  __syncthreads();
  return {list, *list_count, p.block_k, p.m, 0, 0, 0};
}

template <typename Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocks) block_sparse_fwd_kernel(const FwdParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) char smem[];
  const int qstart = static_cast<int>(blockIdx.x) * Traits::kBlockM;
  const int b = static_cast<int>(blockIdx.z);
  const int h = static_cast<int>(blockIdx.y);
  auto tiles = block_sparse_key_tiles<Traits::kThreads, Traits::kBlockN>(p, smem + Traits::kTileSmemBytes, qstart, b, h);
  attend_tile<Traits>(p, smem, qstart, b, h, tiles, [](int, int) { return true; });
#else
  __trap();  // built for an architecture without bf16 mma.sync; can_use refuses such devices
#endif
}

template <bool kIsBf16, int kHeadDim>
void run_block_sparse_fwd(const FwdParams& params, cudaStream_t stream) {
  using Traits = FwdTraits<kIsBf16, kHeadDim>;
  static_assert(Traits::kBlockM == kBlockM && Traits::kBlockN == kBlockN &&
                Traits::kTileSmemBytes == tile_smem_bytes(kHeadDim));
  launch_query_tiles<Traits>(block_sparse_fwd_kernel<Traits>, params,
                             Traits::kTileSmemBytes + block_list_smem_bytes(params.num_k_blocks), stream);
}

}  // namespace sparsescope::cuda
