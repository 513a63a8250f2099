#pragma once
// Note [Fused forward on tensor cores]
//
// Flash-attention-2's forward (online softmax, no N x M buffer) on mma.sync m16n8k16 with fp32
// accumulation, shared by the Dense and BlockSparse kernels; they differ only in which key tiles
// a query tile visits (a KeyTiles policy) and which of those need element masks.
//
// Tiles: a CTA of 8 warps owns kBlockM = 128 queries of one (batch, head), 16 rows per warp, and
// walks key tiles of kBlockN = 64 keys. Each warp keeps its 16 x kBlockN scores and 16 x D output
// accumulator in registers; the probabilities go from the score accumulators straight into
// A-fragments of the P V product (the C layout of two 8-key n-tiles is the A layout of one
// 16-key k-step), so P never touches shared memory. Q stays in shared memory and is re-read per
// k-step. The shape comes from ptxas's resource report (sm_90, bf16): two m-tiles per warp (FA2's
// 4-warp shape, which halves the ldmatrix traffic per MMA) spill at D = 128 (255 registers + 216
// bytes) and at D = 64 with 128-key tiles; 8 warps x 16 rows use 173 registers at D = 128 (one
// CTA per SM) and 128 at D = 64 with two CTAs per SM (kMinBlocks), without spills. The traits keep
// kMTiles and kBlockN as parameters for that trade.
//
// Shared memory: Q (kBlockM x D), one K and one V tile (kBlockN x D each), rows of 16-byte chunks
// XOR-swizzled by row (chunk ^ row % 8) so that both cp.async stores and the 8 row addresses of
// each ldmatrix phase hit distinct banks. D = 64: 32 KB, D = 128: 64 KB.
//
// Pipeline (flash-attention-2's two-buffer scheme): V_j is loaded while S = Q K_j^T is computed,
// and K_{j+1} while the softmax and O += P V_j run; each load is a cp.async group and the
// __syncthreads around it separate the tile's readers from its next writer.
//
// Partial tiles: query rows past N and key rows past M are zero-filled by cp.async (src-size 0),
// so no garbage (NaN) reaches the products; scores of keys past M (and of keys the pattern hides
// inside a visited tile) are set to -inf only in tiles that can hold such keys. A row without any
// key keeps max = -inf and sum = 0 and is written as 0 with LSE -inf (attend()'s convention).
//
// Permuted: the kernels work on positions of the problem the pattern describes; a RowMap turns a
// position into the row of q/k/v it reads and of out/LSE it writes (the identity, or a Permuted's
// permutation fused into the cp.async gathers and the stores, rows arriving 16 bytes at a time
// either way).
#include <c10/cuda/CUDAException.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "../../mask.h"
#include "params.h"

namespace sparsescope::cuda {

template <bool kIsBf16>
struct ElementOf;
template <>
struct ElementOf<true> {
  using type = __nv_bfloat16;
};
template <>
struct ElementOf<false> {
  using type = __half;
};

// ---- PTX wrappers (sm_80+; the kernels guard the architecture around their bodies) ----

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy; with `valid` false nothing is read and the destination is zero-filled.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// D += A B for one m16n8k16 tile, fp32 accumulators.
template <bool kIsBf16>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
  if constexpr (kIsBf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// 2^x in one MUFU op (exp2f adds range handling the softmax does not need); ex2(-inf) = +0.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Two floats as one register of two 16-bit values, the lower column in the low half.
template <bool kIsBf16>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (kIsBf16) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

// The inverse of pack2.
template <bool kIsBf16>
__device__ __forceinline__ float2 unpack2(uint32_t bits) {
  if constexpr (kIsBf16) {
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&bits));
  } else {
    return __half22float2(*reinterpret_cast<const __half2*>(&bits));
  }
}

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Sets to -inf the scores of one warp's m16 x (8 kNTiles) accumulator tile (rows from row0, columns
// from col0) where keep(row, column) is false. keep is evaluated for every element without a
// branch, so that a policy's per-row loads are shared across the tile's columns; it must therefore
// accept columns past the problem (keys past M), which the caller's keep drops itself.
template <int kNTiles, typename Keep>
__device__ __forceinline__ void mask_tile(float (&s)[kNTiles][4], int row0, int col0, int lane, Keep keep) {
#pragma unroll
  for (int t = 0; t < kNTiles; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (!keep(row0 + lane / 4 + (e / 2) * 8, col0 + t * 8 + (lane % 4) * 2 + (e % 2))) s[t][e] = -INFINITY;
}

// ---- Tiles in shared memory ----

template <int kHeadDim>
struct TileLayout {
  static constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
  // Byte offset of (row, chunk) in a swizzled tile.
  __device__ static constexpr uint32_t offset(int row, int chunk) {
    return static_cast<uint32_t>((row * kChunks + (chunk ^ (row & 7))) * 16);
  }
};

// Where position `a` of the problem the pattern describes lives in its tensor: row a, or with a
// fused permutation (Permuted) row rows[a], clamped into [0, limit) so that a bad index cannot read
// or write out of bounds (the CPU checks permutations; the GPU path trusts them).
struct RowMap {
  const int64_t* rows;  // nullptr: the identity
  int limit;
  __device__ __forceinline__ int64_t operator()(int a) const {
    return rows == nullptr ? a : min(max(rows[a], int64_t{0}), static_cast<int64_t>(limit - 1));
  }
};

// The maps of (b, h)'s queries and keys.
__device__ __forceinline__ RowMap query_rows(const FwdParams& p, int b, int h) {
  return {p.q_perm == nullptr ? nullptr : p.q_perm + b * p.q_perm_batch_stride + h * p.q_perm_head_stride, p.n};
}
__device__ __forceinline__ RowMap key_rows(const FwdParams& p, int b, int h) {
  return {p.kv_perm == nullptr ? nullptr : p.kv_perm + b * p.kv_perm_batch_stride + h * p.kv_perm_head_stride, p.m};
}

// Copies the tile of positions [first, first + kRows) from `src` (the (batch, head) plane, row
// stride in elements; position a at row rows(a)) into swizzled shared memory laid out as `Layout`
// (offset(row, chunk) in bytes), `tid` being the caller's index among the kThreads that copy;
// positions at or past first + `valid_rows` are zero-filled. Each thread issues its copies
// kBatch at a time (all at once by default; fewer keep a register-starved caller from spilling).
template <int kRows, int kHeadDim, int kThreads, typename Layout = TileLayout<kHeadDim>,
          int kBatch = kRows * (kHeadDim / 8) / kThreads, typename Element>
__device__ __forceinline__ void load_tile(uint32_t dst, const Element* src, int64_t row_stride, int first,
                                          int valid_rows, RowMap rows, int tid = static_cast<int>(threadIdx.x)) {
  constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
  constexpr int kPerThread = kRows * kChunks / kThreads;
  static_assert(kRows * kChunks % kThreads == 0 && kPerThread % kBatch == 0, "tile not divisible among threads");
#pragma unroll 1
  for (int batch = 0; batch < kPerThread; batch += kBatch) {
#pragma unroll
    for (int i = batch; i < batch + kBatch; ++i) {
      const int linear = i * kThreads + tid;
      const int row = linear / kChunks;
      const int chunk = linear % kChunks;
      const bool valid = row < valid_rows;
      const Element* from = valid ? src + rows(first + row) * row_stride + chunk * 8 : src;
      cp_async_16(dst + Layout::offset(row, chunk), from, valid);
    }
  }
}

// ---- The online softmax, shared by the mma.sync and wgmma kernels ----
//
// Each lane holds rows lane / 4 and lane / 4 + 8 of an m16 tile of scores s[n-tile][4] and of the
// output o[d-tile][4] (mma.sync's C layout, which wgmma's accumulators repeat per warp).

// One key tile's update of the running max and of this lane's part of the sum, s turned into
// unnormalised probabilities, and the factor alpha by which the output accumulated so far is
// rescaled (rescale_rows). Scores are raw (unscaled) and scale > 0, so the max of raw scores is the
// max of scaled ones and 2^(s * scale_log2 - max * scale_log2) is one FFMA.
template <int kNTiles>
__device__ __forceinline__ void softmax_update(float (&s)[kNTiles][4], float (&row_max)[2], float (&row_sum)[2],
                                               float scale_log2, float (&alpha)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = row_max[r];
#pragma unroll
    for (int t = 0; t < kNTiles; ++t) mx = fmaxf(mx, fmaxf(s[t][2 * r], s[t][2 * r + 1]));
    mx = quad_max(mx);
    // A row that has seen no key yet keeps -inf; exponentiate against 0 so that no NaN arises.
    const float base = mx == -INFINITY ? 0.f : mx * scale_log2;
    alpha[r] = fast_exp2(row_max[r] * scale_log2 - base);
    row_max[r] = mx;
    row_sum[r] *= alpha[r];
#pragma unroll
    for (int t = 0; t < kNTiles; ++t) {
      s[t][2 * r] = fast_exp2(fmaf(s[t][2 * r], scale_log2, -base));
      s[t][2 * r + 1] = fast_exp2(fmaf(s[t][2 * r + 1], scale_log2, -base));
      row_sum[r] += s[t][2 * r] + s[t][2 * r + 1];
    }
  }
}

template <int kDTiles>
__device__ __forceinline__ void rescale_rows(float (&o)[kDTiles][4], const float (&alpha)[2]) {
#pragma unroll
  for (int t = 0; t < kDTiles; ++t) {
    o[t][0] *= alpha[0];
    o[t][1] *= alpha[0];
    o[t][2] *= alpha[1];
    o[t][3] *= alpha[1];
  }
}

// softmax_update and the output's rescaling at once.
template <int kNTiles, int kDTiles>
__device__ __forceinline__ void online_softmax(float (&s)[kNTiles][4], float (&o)[kDTiles][4], float (&row_max)[2],
                                               float (&row_sum)[2], float scale_log2) {
  float alpha[2];
  softmax_update(s, row_max, row_sum, scale_log2, alpha);
  rescale_rows(o, alpha);
}

// The A fragment of P for keys [16 kk, 16 kk + 16): the C layout of two 8-key n-tiles is the A
// layout of one 16-key k-step, so P goes from the score registers straight into the P V product.
template <bool kIsBf16, int kNTiles>
__device__ __forceinline__ void p_fragment(uint32_t (&a)[4], const float (&s)[kNTiles][4], int kk) {
  a[0] = pack2<kIsBf16>(s[2 * kk][0], s[2 * kk][1]);
  a[1] = pack2<kIsBf16>(s[2 * kk][2], s[2 * kk][3]);
  a[2] = pack2<kIsBf16>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
  a[3] = pack2<kIsBf16>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
}

// Writes an m16 tile's normalised output rows (first row `row0` of the query tile at qstart) and
// their LSE through the query row map, rows past N skipped.
template <bool kIsBf16, int kDTiles>
__device__ __forceinline__ void store_rows(const FwdParams& p, const float (&o)[kDTiles][4], const float (&row_max)[2],
                                           const float (&row_sum)[2], int b, int h, int qstart, int row0, int lane,
                                           RowMap qrows) {
  using Element = typename ElementOf<kIsBf16>::type;
  constexpr int kHeadDim = kDTiles * 8;
  Element* out = static_cast<Element*>(p.out) + (static_cast<int64_t>(b) * p.heads + h) * p.n * kHeadDim;
  float* lse = p.lse + (static_cast<int64_t>(b) * p.heads + h) * p.n;
  const int col0 = (lane % 4) * 2;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row0 + lane / 4 + r * 8;
    const float sum = quad_sum(row_sum[r]);
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    if (qstart + row >= p.n) continue;
    const int64_t dest = qrows(qstart + row);
#pragma unroll
    for (int t = 0; t < kDTiles; ++t) {
      *reinterpret_cast<uint32_t*>(out + dest * kHeadDim + t * 8 + col0) =
          pack2<kIsBf16>(o[t][2 * r] * inv, o[t][2 * r + 1] * inv);
    }
    if (lane % 4 == 0)
      lse[dest] = sum > 0.f ? (row_max[r] * p.scale_log2 + log2f(sum)) * 0.69314718055994531f : -INFINITY;
  }
}

// ---- The main loop ----

template <bool kIsBf16_, int kHeadDim_, int kBlockN_ = 64, int kWarps_ = 8, int kMTiles_ = 1,
          int kMinBlocks_ = (kHeadDim_ <= 64 ? 2 : 1)>
struct FwdTraits {
  static constexpr bool kIsBf16 = kIsBf16_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kWarps = kWarps_;
  static constexpr int kMTiles = kMTiles_;  // m16 tiles per warp
  static constexpr int kBlockM = kWarps * kMTiles * 16;
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kMinBlocks = kMinBlocks_;  // CTAs per SM that __launch_bounds__ asks for
  using Element = typename ElementOf<kIsBf16>::type;
  static constexpr int kQBytes = kBlockM * kHeadDim * 2;
  static constexpr int kKVBytes = kBlockN * kHeadDim * 2;
  static constexpr int kTileSmemBytes = kQBytes + 2 * kKVBytes;
};

/// No additive bias: attend_tile's default. The slot stages per-key-tile data with the K tile (a
/// bias tile; the Neighborhood kernel's key coordinates, with kActive false). A bias provides
///   kActive;
///   void load(uint32_t tile, int qstart, int kstart): issues cp.async copies of the key tile's
///     bias into `tile` (shared memory after the V tile; committed with the K tile's group), or
///     nothing;
///   void add(float (&s)[kMTiles][kNTiles][4], const char* tile, int qstart, int kstart, int row0,
///     int lane): adds to this lane's unscaled scores (rows from row0 within the query tile) their
///     bias divided by the scale, from `tile` or from global memory, before masking.
struct NoBias {
  static constexpr bool kActive = false;
  __device__ void load(uint32_t, int, int) const {}
  template <int kMTiles, int kNTiles>
  __device__ void add(float (&)[kMTiles][kNTiles][4], const char*, int, int, int, int) const {}
};

/// One query tile against the key tiles that `tiles` yields. `tiles` provides
///   int first() / int next(): key-tile start positions in visiting order, -1 when done;
///   bool needs_mask(int kstart): whether the tile may hold keys the tile's queries don't see, or
///   biased scores.
/// `visible(query, key)` decides those keys (asked only in tiles that need masks, also for keys
/// past M, which are dropped whatever it answers: mask_tile). `bias` (NoBias says how) is added to
/// every tile's scores before the masks; a bias tile travels with its K tile. Key position a is read
/// from row krows(a) of k and v.
template <typename Traits, typename Tiles, typename Visible, typename Bias = NoBias>
__device__ __forceinline__ void attend_tile_rows(const FwdParams& p, char* smem, int qstart, int b, int h,
                                                 RowMap krows, Tiles& tiles, Visible visible, Bias bias = {}) {
  using Element = typename Traits::Element;
  using Layout = TileLayout<Traits::kHeadDim>;
  constexpr bool kIsBf16 = Traits::kIsBf16;
  constexpr int kHeadDim = Traits::kHeadDim;
  constexpr int kBlockN = Traits::kBlockN;
  constexpr int kThreads = Traits::kThreads;
  constexpr int kMTiles = Traits::kMTiles;
  constexpr int kDSteps = kHeadDim / 16;   // k-steps of Q K^T
  constexpr int kNTiles = kBlockN / 8;     // n-tiles of S
  constexpr int kKSteps = kBlockN / 16;    // k-steps of P V
  constexpr int kDTiles = kHeadDim / 8;    // n-tiles of O

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const uint32_t s_q = smem_addr(smem);
  const uint32_t s_k = s_q + Traits::kQBytes;
  const uint32_t s_v = s_k + Traits::kKVBytes;
  const char* bias_tile = smem + Traits::kQBytes + 2 * Traits::kKVBytes;  // the bias's shared memory, if any
  const uint32_t s_bias = s_v + Traits::kKVBytes;

  const Element* q = static_cast<const Element*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride;
  const Element* k = static_cast<const Element*>(p.k) + b * p.k_batch_stride + (h / p.kv_group) * p.k_head_stride;
  const Element* v = static_cast<const Element*>(p.v) + b * p.v_batch_stride + (h / p.kv_group) * p.v_head_stride;

  const RowMap qrows = query_rows(p, b, h);

  int kstart = tiles.first();
  load_tile<Traits::kBlockM, kHeadDim, kThreads>(s_q, q, p.q_row_stride, qstart, p.n - qstart, qrows);
  if (kstart >= 0) {
    load_tile<kBlockN, kHeadDim, kThreads>(s_k, k, p.k_row_stride, kstart, p.m - kstart, krows);
    bias.load(s_bias, qstart, kstart);
  }
  cp_async_commit();

  // This warp's first row; each lane holds rows lane / 4 and lane / 4 + 8 of every m-tile.
  const int warp_row = warp * kMTiles * 16;

  float o[kMTiles][kDTiles][4];
  float row_max[kMTiles][2];
  float row_sum[kMTiles][2];  // this lane's columns only; summed over the quad at the end
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int t = 0; t < kDTiles; ++t) o[mt][t][0] = o[mt][t][1] = o[mt][t][2] = o[mt][t][3] = 0.f;
    row_max[mt][0] = row_max[mt][1] = -INFINITY;
    row_sum[mt][0] = row_sum[mt][1] = 0.f;
  }

  while (kstart >= 0) {
    cp_async_wait<0>();
    __syncthreads();  // K_j (and Q) landed; every warp is done reading V_{j-1}
    load_tile<kBlockN, kHeadDim, kThreads>(s_v, v, p.v_row_stride, kstart, p.m - kstart, krows);
    cp_async_commit();

    float s[kMTiles][kNTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int t = 0; t < kNTiles; ++t) s[mt][t][0] = s[mt][t][1] = s[mt][t][2] = s[mt][t][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < kDSteps; ++ks) {
      uint32_t qf[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
        ldmatrix_x4(qf[mt], s_q + Layout::offset(warp_row + mt * 16 + lane % 8 + ((lane / 8) % 2) * 8,
                                                 ks * 2 + lane / 16));
#pragma unroll
      for (int np = 0; np < kNTiles / 2; ++np) {
        uint32_t kf[4];
        ldmatrix_x4(kf, s_k + Layout::offset(np * 16 + lane % 8 + (lane / 16) * 8,
                                             ks * 2 + (lane / 8) % 2));
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma_16816<kIsBf16>(s[mt][2 * np], qf[mt], kf[0], kf[1]);
          mma_16816<kIsBf16>(s[mt][2 * np + 1], qf[mt], kf[2], kf[3]);
        }
      }
    }

    if constexpr (Bias::kActive) bias.add(s, bias_tile, qstart, kstart, warp_row, lane);
    if (tiles.needs_mask(kstart)) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
        mask_tile(s[mt], qstart + warp_row + mt * 16, kstart, lane,
                  [&](int query, int key) { return (key < p.m) & visible(query, key); });
    }

    const int knext = tiles.next();
    cp_async_wait<0>();
    __syncthreads();  // V_j landed; every warp is done reading K_j
    if (knext >= 0) {
      load_tile<kBlockN, kHeadDim, kThreads>(s_k, k, p.k_row_stride, knext, p.m - knext, krows);
      bias.load(s_bias, qstart, knext);
      cp_async_commit();
    }

#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) online_softmax(s[mt], o[mt], row_max[mt], row_sum[mt], p.scale_log2);

#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      uint32_t pa[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) p_fragment<kIsBf16>(pa[mt], s[mt], kk);
#pragma unroll
      for (int dp = 0; dp < kDTiles / 2; ++dp) {
        uint32_t vf[4];
        ldmatrix_x4_trans(vf, s_v + Layout::offset(kk * 16 + lane % 8 + ((lane / 8) % 2) * 8,
                                                   dp * 2 + lane / 16));
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma_16816<kIsBf16>(o[mt][2 * dp], pa[mt], vf[0], vf[1]);
          mma_16816<kIsBf16>(o[mt][2 * dp + 1], pa[mt], vf[2], vf[3]);
        }
      }
    }
    kstart = knext;
  }
  // A query tile without key tiles committed Q and nothing else; drain it before leaving.
  cp_async_wait<0>();

#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
    store_rows<kIsBf16>(p, o[mt], row_max[mt], row_sum[mt], b, h, qstart, warp_row + mt * 16, lane, qrows);
}

// attend_tile_rows with the problem's own key rows (the identity, or a Permuted's permutation).
template <typename Traits, typename Tiles, typename Visible, typename Bias = NoBias>
__device__ __forceinline__ void attend_tile(const FwdParams& p, char* smem, int qstart, int b, int h, Tiles& tiles,
                                            Visible visible, Bias bias = {}) {
  attend_tile_rows<Traits>(p, smem, qstart, b, h, key_rows(p, b, h), tiles, visible, bias);
}

// Launches a tensor-core kernel with one CTA per kBlockM queries of each (batch, head) and `smem`
// bytes of dynamic shared memory.
template <typename Traits, typename Kernel>
void launch_query_tiles(Kernel kernel, const FwdParams& params, int smem, cudaStream_t stream) {
  const dim3 grid((params.n + Traits::kBlockM - 1) / Traits::kBlockM, params.heads, params.batch);
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  kernel<<<grid, Traits::kThreads, smem, stream>>>(params);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace sparsescope::cuda
