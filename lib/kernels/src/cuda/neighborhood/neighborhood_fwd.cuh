#pragma once
// Neighborhood forward (NATTEN's sliding windows on a 1-3D grid, with dilation and causal axes) on
// the tensor-core main loop. Tokens are the grid's cells in row-major order and a CTA owns kBlockM
// consecutive queries. Each query's window along each axis (mask::neighborhood_window, the rule the
// reference and materialize() use) is computed once into shared memory. The CTA then lists the
// kBlockN-key tiles that some window reaches: one run of keys per window row along the last axis,
// the runs of a warp's 32 consecutive queries merged by a warp min/max (consecutive cells' windows
// overlap, so the union is one run but at a grid row's turn, where it may take a few extra keys
// that the mask drops) into the CTA's key-block list (common/key_block_list.cuh). The main loop
// visits only those tiles; every score is masked by the windows. The keys' coordinates (two
// multiply-and-shift divisions, FastDivisor) and their residues modulo the dilations are staged
// per key tile in shared memory with the K tile's load, and each query's window is a range and a
// residue per axis, so a score's test is three range checks and three equalities.
#include <climits>

#include "../common/flash_fwd.cuh"
#include "../common/key_block_list.cuh"
#include "../common/launch.h"

namespace sparsescope::cuda {

// A query's window along one axis: `count` keys from `first` to `last`, the dilation apart, all
// congruent to `residue` modulo the dilation (the query's own residue).
struct AxisBox {
  int first, last, residue, count;
};

// A key's coordinates and their residues modulo the axes' dilations (the fourth of each unused).
struct KeyCoords {
  int coord[4], residue[4];
};

// A token's coordinates on the (padded) 3-axis grid in two multiply-and-shift divisions:
// token / stride_i is token / stride_(i-1) times extent_i plus coordinate i.
__device__ __forceinline__ void coordinates(const FwdParams& p, int token, int (&coord)[3]) {
  const int plane = p.nb_stride[0].div(token);  // < extent_0: tokens are < the grid's cells
  const int row = p.nb_stride[1].div(token);
  coord[0] = plane;
  coord[1] = row - plane * p.nb_extent[1];
  coord[2] = token - row * p.nb_extent[2];
}

// A key's staged coordinates (keys past M are masked whatever their slot says: clamped to M - 1).
__device__ __forceinline__ KeyCoords key_coords(const FwdParams& p, int key) {
  int c[3];
  coordinates(p, min(key, p.m - 1), c);
  KeyCoords k{};
#pragma unroll
  for (int i = 0; i < 3; ++i) {
    k.coord[i] = c[i];
    k.residue[i] = p.nb_dilation[i] == 1 ? 0 : c[i] % p.nb_dilation[i];
  }
  return k;
}

// attend_tile's per-key-tile staging (its Bias slot, adding nothing to the scores): with each K
// tile's load, the first kBlockN threads write their key's KeyCoords to `keys`; the barrier that
// makes the K tile visible makes them visible too.
template <int kBlockN>
struct StagedKeyCoords {
  static constexpr bool kActive = false;
  const FwdParams* p;
  KeyCoords* keys;
  __device__ void load(uint32_t, int, int kstart) const {
    const int t = static_cast<int>(threadIdx.x);
    if (t < kBlockN) keys[t] = key_coords(*p, kstart + t);
  }
  template <int kMTiles, int kNTiles>
  __device__ void add(float (&)[kMTiles][kNTiles][4], const char*, int, int, int, int) const {}
};

// Whether a staged key lies in every axis window of a query (`boxes`: its 3 AxisBoxes, kBlockM apart).
__device__ __forceinline__ bool in_windows(const AxisBox* boxes, const KeyCoords& key) {
  bool seen = true;
#pragma unroll
  for (int i = 0; i < 3; ++i) {
    const AxisBox w = boxes[i * kBlockM];
    seen &= (key.coord[i] >= w.first) & (key.coord[i] <= w.last) & (key.residue[i] == w.residue);  // no branches
  }
  return seen;
}

// The CTA's query windows (into `windows`, [3][kBlockM]) and the kBlockN-key tiles some window
// reaches, as a list in `list_smem` (block_list_smem_bytes(p.num_k_blocks), p.num_k_blocks being
// ceil(M / kBlockN)). Every thread of the CTA (kThreads of them) calls it; the windows are the
// first kBlockM threads' work.
template <int kThreads, int kBlockN>
__device__ __forceinline__ BlockListTiles<kBlockN, /*kAlwaysMask=*/true> neighborhood_key_tiles(
    const FwdParams& p, AxisBox* windows, char* list_smem, int qstart) {
  static_assert(kThreads >= kBlockM, "a thread per query of the tile");
  const int words = (p.num_k_blocks + 31) / 32;
  uint32_t* bits = reinterpret_cast<uint32_t*>(list_smem);
  int* list = reinterpret_cast<int*>(bits + words);
  int* list_count = list + p.num_k_blocks;
  const int tid = static_cast<int>(threadIdx.x);

  for (int w = tid; w < words; w += kThreads) bits[w] = 0;
  const int query = qstart + tid;
  if (tid < kBlockM) {
    // Rows past N get empty windows: they see no key (and are never written).
    int coord[3];
    coordinates(p, query < p.n ? query : 0, coord);
#pragma unroll
    for (int i = 0; i < 3; ++i) {
      AxisBox w{0, -1, -1, 0};
      if (query < p.n) {
        const mask::AxisWindow a =
            mask::neighborhood_window(coord[i], p.nb_extent[i], p.nb_kernel[i], p.nb_dilation[i], p.nb_causal[i]);
        const int first = static_cast<int>(a.first), count = static_cast<int>(a.count);
        w = {first, first + (count - 1) * p.nb_dilation[i], first % p.nb_dilation[i], count};
      }
      windows[i * kBlockM + tid] = w;
    }
  }
  __syncthreads();

  if (tid < kBlockM) {  // warps 0 .. kBlockM / 32 - 1, whole warps
    const AxisBox w0 = windows[tid], w1 = windows[kBlockM + tid], w2 = windows[2 * kBlockM + tid];
    const int step0 = p.nb_dilation[0], step1 = p.nb_dilation[1], step2 = p.nb_dilation[2];
    const int rows = w0.count * w1.count;  // window rows along the last axis; 0 past N
    const int stride0 = static_cast<int>(p.nb_stride[0].divisor), stride1 = static_cast<int>(p.nb_stride[1].divisor);
    if (p.nb_dilation[2] >= kBlockN) {  // uniform over the CTA (rows past N have step 1)
      // Keys of a row farther apart than a tile (dilation >= kBlockN): each key's tile.
      for (int r = 0; r < rows; ++r) {
        const int base = (w0.first + r / w1.count * step0) * stride0 + (w1.first + r % w1.count * step1) * stride1;
        for (int j = 0; j < w2.count; ++j) mark_block(bits, (base + w2.first + j * step2) / kBlockN);
      }
    } else {
      const int warp_rows = __reduce_max_sync(0xffffffffu, rows);
      for (int r = 0; r < warp_rows; ++r) {
        int lo = INT_MAX, hi = -1;
        if (r < rows) {
          const int base = (w0.first + r / w1.count * step0) * stride0 + (w1.first + r % w1.count * step1) * stride1;
          lo = base + w2.first;
          hi = lo + (w2.count - 1) * step2;
        }
        lo = __reduce_min_sync(0xffffffffu, lo);
        hi = __reduce_max_sync(0xffffffffu, hi);
        if (hi >= 0) {
          // The warp's run of tiles, one lane a tile.
          for (int t = lo / kBlockN + (tid % 32); t <= hi / kBlockN; t += 32) mark_block(bits, t);
        }
      }
    }
  }
  __syncthreads();
  compact_blocks(bits, words, list, list_count, tid);
  __syncthreads();
  // Tiles start at multiples of kBlockN: a key's slot in the staged tile is key % kBlockN.
  return {list, *list_count, kBlockN, p.m, 0, 0, 0};
}

template <typename Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocks) neighborhood_fwd_kernel(const FwdParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int kBlockN = Traits::kBlockN;
  extern __shared__ __align__(128) char smem[];
  AxisBox* windows = reinterpret_cast<AxisBox*>(smem + Traits::kTileSmemBytes);  // [3][kBlockM]
  KeyCoords* keys = reinterpret_cast<KeyCoords*>(windows + 3 * kBlockM);     // [kBlockN]
  const int qstart = static_cast<int>(blockIdx.x) * kBlockM;
  const int b = static_cast<int>(blockIdx.z);
  const int h = static_cast<int>(blockIdx.y);
  auto tiles = neighborhood_key_tiles<Traits::kThreads, kBlockN>(p, windows, reinterpret_cast<char*>(keys + kBlockN), qstart);
  attend_tile<Traits>(
      p, smem, qstart, b, h, tiles,
      [windows, keys, qstart](int q, int key) { return in_windows(windows + (q - qstart), keys[key % kBlockN]); },
      StagedKeyCoords<kBlockN>{&p, keys});
#else
  __trap();  // built for an architecture without bf16 mma.sync; can_use refuses such devices
#endif
}

template <bool kIsBf16, int kHeadDim>
void run_neighborhood_fwd(const FwdParams& params, cudaStream_t stream) {
  using Traits = FwdTraits<kIsBf16, kHeadDim>;
  static_assert(Traits::kBlockM == kBlockM && Traits::kBlockN == kBlockN &&
                Traits::kTileSmemBytes == tile_smem_bytes(kHeadDim) && sizeof(AxisBox) == 16 &&
                sizeof(KeyCoords) == 32);
  launch_query_tiles<Traits>(neighborhood_fwd_kernel<Traits>, params,
                             neighborhood_smem_bytes(kHeadDim, params.num_k_blocks), stream);
}

}  // namespace sparsescope::cuda
