#pragma once
// A CTA's key blocks as a list, shared by the kernels whose query tiles see a scattered set of key
// blocks (BlockSparse, Neighborhood): the threads set one bit per visible block in a shared-memory
// bitmap, which makes repeated blocks count once, warp 0 compacts it into an ascending list, and
// BlockListTiles walks the kBlockN-key tiles of the listed blocks for attend_tile.
#include <cstdint>

namespace sparsescope::cuda {

template <int kBlockN, bool kAlwaysMask = false>
struct BlockListTiles {
  const int* list;  // key blocks in ascending order (shared memory)
  int count;
  int block_k;
  int m;
  int i;          // position in `list`
  int current;    // start of the current tile
  int block_end;  // one past the last key of the current block

  __device__ int enter_block() {
    for (; i < count; ++i) {
      current = list[i] * block_k;
      block_end = min(current + block_k, m);
      if (current < block_end) return current;
    }
    return -1;
  }
  __device__ int first() {
    i = 0;
    return enter_block();
  }
  __device__ int next() {
    current += kBlockN;
    if (current < block_end) return current;
    ++i;
    return enter_block();
  }
  // Without kAlwaysMask every key of a listed block is visible: only the tile holding key M - 1
  // needs an element mask.
  __device__ bool needs_mask(int kstart) const { return kAlwaysMask || kstart + kBlockN > m; }
};

__device__ __forceinline__ void mark_block(uint32_t* bits, int block) {
  atomicOr(&bits[block / 32], 1u << (block % 32));
}

// Warp 0 (tid < 32) compacts `words` words of `bits` into `list` (ascending) and its length into
// *list_count, 32 words per step: a prefix sum of their population counts places each word's
// blocks. The caller synchronises before and after.
__device__ __forceinline__ void compact_blocks(const uint32_t* bits, int words, int* list, int* list_count,
                                               int tid) {
  if (tid >= 32) return;
  int total = 0;
  for (int base = 0; base < words; base += 32) {
    const int w = base + tid;
    uint32_t x = w < words ? bits[w] : 0u;
    const int c = __popc(x);
    int inclusive = c;
#pragma unroll
    for (int d = 1; d < 32; d *= 2) {
      const int y = __shfl_up_sync(0xffffffffu, inclusive, d);
      if (tid >= d) inclusive += y;
    }
    int at = total + inclusive - c;
    while (x) {
      list[at++] = w * 32 + __ffs(x) - 1;
      x &= x - 1;
    }
    total += __shfl_sync(0xffffffffu, inclusive, 31);
  }
  if (tid == 0) *list_count = total;
}

}  // namespace sparsescope::cuda
