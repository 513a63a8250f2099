#pragma once
// Dense (optionally causal) forward: every key tile up to the last one a query of the tile can
// see. Masks apply to the tile holding key M - 1 when M is not a tile multiple, and to the tiles
// crossing the causal diagonal; with Dense.mask, to every tile: a bool mask drops keys, a bias is
// read per score from global memory (through L2: each quad of lanes reads 8 adjacent keys of a
// row) and added, so a learnable mask costs one read of [N, M] and no N x M buffer. Causal CTAs
// are scheduled heaviest first (the last query tiles see the most keys), which evens out the tail
// of the grid.
#include "../common/flash_fwd.cuh"
#include "../common/launch.h"
#include "../common/static_switch.h"

namespace sparsescope::cuda {

template <int kBlockN>
struct DenseTiles {
  int end;     // one past the last key any query of the tile sees
  int qstart;  // the tile's first query
  bool causal;
  bool masked;  // a bool Dense.mask: every tile
  int current;
  __device__ int first() { return current = end > 0 ? 0 : -1; }
  __device__ int next() {
    current += kBlockN;
    return current < end ? current : -1;
  }
  __device__ bool needs_mask(int kstart) const {
    return masked || kstart + kBlockN > end || (causal && kstart + kBlockN - 1 > qstart);
  }
};

// The key tiles of the query tile at qstart: up to the last key one of its queries sees (top-left
// causal: key <= query). `masked`: a bool mask that can drop keys in any tile.
template <int kBlockM, int kBlockN, bool kCausal>
__device__ __forceinline__ DenseTiles<kBlockN> dense_key_tiles(const FwdParams& p, int qstart, bool masked) {
  const int end = kCausal ? min(p.m, min(qstart + kBlockM, p.n)) : p.m;
  return {end, qstart, kCausal, masked, 0};
}

// Dense's visibility without a mask: everything, or top-left causal.
template <bool kCausal>
struct DenseVisible {
  __device__ bool operator()(int query, int key) const { return !kCausal || mask::causal_visible(query, key); }
};

// Dense.mask of one (batch, head): whether a key is kept (a bool mask), and the bias that a score
// gets (a floating mask). A bias laid out for 16-byte copies (FwdParams::mask_staged) is staged per
// key tile in shared memory with the K tile, rows padded by 16 bytes so that the 8 rows a warp reads
// at once fall in distinct banks, and each lane reads its two adjacent keys in one 32-bit load;
// otherwise each score reads global memory, bounds-checked.
template <bool kIsBf16, int kBlockM, int kBlockN, int kThreads>
struct DenseMask {
  using Element = typename ElementOf<kIsBf16>::type;
  static constexpr bool kActive = true;
  static constexpr int kRowElements = kBlockN + 8;
  static constexpr int kTileBytes = kBlockM * kRowElements * 2;
  const char* base;  // the (batch, head) plane
  int64_t row_stride, col_stride;  // in elements
  bool is_bool, staged;
  float inv_scale;
  int n, m;
  __device__ int64_t offset(int query, int key) const {
    return static_cast<int64_t>(query) * row_stride + static_cast<int64_t>(key) * col_stride;
  }
  __device__ bool keep(int query, int key) const {  // rows past N and keys past M read nothing
    return !is_bool || (query < n && key < m && reinterpret_cast<const bool*>(base)[offset(query, key)]);
  }
  __device__ float at(int query, int key) const {
    return query < n && key < m ? static_cast<float>(reinterpret_cast<const Element*>(base)[offset(query, key)]) : 0.f;
  }
  __device__ void load(uint32_t tile, int qstart, int kstart) const {
    if (!staged) return;
    constexpr int kChunks = kBlockN * 2 / 16;  // 16-byte chunks per row
    static_assert(kBlockM * kChunks % kThreads == 0, "bias tile not divisible among threads");
#pragma unroll
    for (int i = 0; i < kBlockM * kChunks / kThreads; ++i) {
      const int linear = i * kThreads + static_cast<int>(threadIdx.x);
      const int row = linear / kChunks, chunk = linear % kChunks;
      const int query = qstart + row, key = kstart + chunk * 8;
      // staged implies m % 8 == 0: a chunk is wholly inside or wholly past M.
      const bool valid = query < n && key < m;
      const Element* from = reinterpret_cast<const Element*>(base) + (valid ? offset(query, key) : 0);
      cp_async_16(tile + static_cast<uint32_t>((row * kRowElements + chunk * 8) * 2), from, valid);
    }
  }
  template <int kMTiles, int kNTiles>
  __device__ void add(float (&s)[kMTiles][kNTiles][4], const char* tile, int qstart, int kstart, int row0,
                      int lane) const {
    if (is_bool) return;
    const int col0 = (lane % 4) * 2;
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int row = row0 + mt * 16 + lane / 4 + r * 8;
#pragma unroll
        for (int t = 0; t < kNTiles; ++t) {
          const int col = t * 8 + col0;
          float2 b;
          if (staged) {
            b = unpack2<kIsBf16>(*reinterpret_cast<const uint32_t*>(tile + (row * kRowElements + col) * 2));
          } else {
            b = make_float2(at(qstart + row, kstart + col), at(qstart + row, kstart + col + 1));
          }
          s[mt][t][2 * r] += b.x * inv_scale;
          s[mt][t][2 * r + 1] += b.y * inv_scale;
        }
      }
  }
};

// The Dense.mask of (b, h).
template <typename Mask>
__device__ __forceinline__ Mask dense_mask_of(const FwdParams& p, int b, int h) {
  const int64_t element = p.mask_is_bool ? 1 : static_cast<int64_t>(sizeof(typename Mask::Element));
  return {static_cast<const char*>(p.mask) + (b * p.mask_batch_stride + h * p.mask_head_stride) * element,
          p.mask_row_stride, p.mask_col_stride, p.mask_is_bool, p.mask_staged, p.inv_scale, p.n, p.m};
}

template <typename Traits, bool kCausal, bool kMasked>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocks) dense_fwd_kernel(const FwdParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) char smem[];
  const int tile =
      kCausal ? static_cast<int>(gridDim.x - 1 - blockIdx.x) : static_cast<int>(blockIdx.x);
  const int qstart = tile * Traits::kBlockM;
  const int b = static_cast<int>(blockIdx.z);
  const int h = static_cast<int>(blockIdx.y);
  // A bool mask can drop keys in any tile; a bias only adds to the scores.
  auto tiles = dense_key_tiles<Traits::kBlockM, Traits::kBlockN, kCausal>(p, qstart, kMasked && p.mask_is_bool);
  if constexpr (kMasked) {
    const auto mask = dense_mask_of<DenseMask<Traits::kIsBf16, Traits::kBlockM, Traits::kBlockN, Traits::kThreads>>(p, b, h);
    attend_tile<Traits>(
        p, smem, qstart, b, h, tiles,
        [&mask](int query, int key) { return DenseVisible<kCausal>{}(query, key) && mask.keep(query, key); },
        mask);
  } else {
    attend_tile<Traits>(p, smem, qstart, b, h, tiles, DenseVisible<kCausal>{});
  }
#else
  __trap();  // built for an architecture without bf16 mma.sync; can_use refuses such devices
#endif
}

template <bool kIsBf16, int kHeadDim>
void run_dense_fwd(const FwdParams& params, cudaStream_t stream) {
  using Traits = FwdTraits<kIsBf16, kHeadDim>;
  static_assert(Traits::kBlockM == kBlockM && Traits::kBlockN == kBlockN &&
                Traits::kTileSmemBytes == tile_smem_bytes(kHeadDim));
  SPARSESCOPE_BOOL_SWITCH(params.causal, kCausal, [&] {
    SPARSESCOPE_BOOL_SWITCH(params.mask != nullptr, kMasked, [&] {
      using Mask = DenseMask<Traits::kIsBf16, Traits::kBlockM, Traits::kBlockN, Traits::kThreads>;
      launch_query_tiles<Traits>(dense_fwd_kernel<Traits, kCausal, kMasked>, params,
                                 Traits::kTileSmemBytes + (params.mask_staged ? Mask::kTileBytes : 0), stream);
    });
  });
}

}  // namespace sparsescope::cuda
