#pragma once
// Note [TopK on tensor cores]
//
// TopK lists that keep a large share of the keys (a quarter, say) overlap heavily
// between neighbouring queries. This kernel gives a CTA 128 consecutive queries and gathers the union
// of their listed keys: each listed key sets its row's bit in its query's bitmap and in the CTA's
// union bitmap (shared memory), warp 0 compacts the union into an ascending list of rows, and the
// tensor-core main loop (attend_tile_rows) walks that list 64 keys at a time, its K and V tiles
// gathered through the list by the cp.async loads, every score masked by its query's bitmap. The
// work is the union's size times 128 queries on tensor cores, against each query's own keys on CUDA
// cores in the warp-per-query kernel (topk_fwd.cuh): the host picks this one when the lists keep at
// least an eighth of the keys (topk_union_pays). Repeated and out-of-range (-1 padding) entries
// count once or not at all, TopK's set semantics.
#include "../common/flash_fwd.cuh"
#include "../common/key_block_list.cuh"
#include "../common/launch.h"

namespace sparsescope::cuda {

// Positions [0, count) of a gathered key list, kBlockN at a time, every tile masked.
template <int kBlockN>
struct GatheredTiles {
  int count;
  int current;
  __device__ int first() { return current = count > 0 ? 0 : -1; }
  __device__ int next() {
    current += kBlockN;
    return current < count ? current : -1;
  }
  __device__ bool needs_mask(int) const { return true; }
};

template <typename Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocks) topk_union_fwd_kernel(const FwdParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int kBlockM = Traits::kBlockM, kThreads = Traits::kThreads;
  extern __shared__ __align__(128) char smem[];
  const int words = (p.m + 31) / 32;
  // Shared memory after the tiles: the queries' bitmaps [kBlockM][words] and the union's [words],
  // the union's rows as int64 (RowMap's) [M], the compacted list [M] and its length.
  uint32_t* query_bits = reinterpret_cast<uint32_t*>(smem + Traits::kTileSmemBytes);
  uint32_t* union_bits = query_bits + kBlockM * words;
  int64_t* rows = reinterpret_cast<int64_t*>(union_bits + words + (words & 1));
  int* list = reinterpret_cast<int*>(rows + p.m);
  int* list_count = list + p.m;

  const int qstart = static_cast<int>(blockIdx.x) * kBlockM;
  const int b = static_cast<int>(blockIdx.z);
  const int h = static_cast<int>(blockIdx.y);
  const int tid = static_cast<int>(threadIdx.x);

  for (int w = tid; w < (kBlockM + 1) * words; w += kThreads) query_bits[w] = 0;  // the union's too
  __syncthreads();
  const RowMap krows = key_rows(p, b, h);
  const int64_t* index = p.topk_index + b * p.topk_batch_stride + h * p.topk_head_stride;
  const int queries = min(kBlockM, p.n - qstart);
  for (int e = tid; e < queries * p.topk_k; e += kThreads) {
    const int r = e / p.topk_k, slot = e % p.topk_k;
    const int64_t key = index[static_cast<int64_t>(qstart + r) * p.topk_row_stride + slot * p.topk_col_stride];
    if (key < 0 || key >= p.m) continue;
    const auto row = static_cast<int>(krows(static_cast<int>(key)));  // the key's row (Permuted: fused)
    atomicOr(&query_bits[r * words + row / 32], 1u << (row % 32));
    atomicOr(&union_bits[row / 32], 1u << (row % 32));
  }
  __syncthreads();
  compact_blocks(union_bits, words, list, list_count, tid);
  __syncthreads();
  const int count = *list_count;
  for (int i = tid; i < count; i += kThreads) rows[i] = list[i];
  __syncthreads();

  GatheredTiles<Traits::kBlockN> tiles{count, 0};
  attend_tile_rows<Traits>(p, smem, qstart, b, h, RowMap{rows, p.m}, tiles, [&](int query, int position) {
    const int row = static_cast<int>(rows[min(position, count - 1)]);  // positions past the list: masked
    return (position < count) & ((query_bits[(query - qstart) * words + row / 32] >> (row % 32)) & 1u);
  });
#else
  __trap();  // built for an architecture without bf16 mma.sync; can_use refuses such devices
#endif
}

template <bool kIsBf16, int kHeadDim>
void run_topk_union_fwd(const FwdParams& params, cudaStream_t stream) {
  using Traits = FwdTraits<kIsBf16, kHeadDim>;
  static_assert(Traits::kBlockM == kBlockM && Traits::kBlockN == kBlockN &&
                Traits::kTileSmemBytes == tile_smem_bytes(kHeadDim));
  launch_query_tiles<Traits>(topk_union_fwd_kernel<Traits>, params,
                             static_cast<int>(topk_union_smem_bytes(kHeadDim, params.m)), stream);
}

}  // namespace sparsescope::cuda
