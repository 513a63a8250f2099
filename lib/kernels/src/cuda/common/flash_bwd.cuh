#pragma once
// Note [Fused backward on tensor cores]
//
// Flash-attention-2's backward from the forward's saved LSE, on the forward's mma.sync tiles
// (flash_fwd.cuh): no second forward and no N x M buffer. A CTA of 4 warps owns kBlockN = 64 keys
// of one (batch, head), 16 per warp, and walks the query tiles that see them (a QueryTiles
// policy, kBlockM queries per step); dK and dV stay in registers for the whole walk, dQ is summed
// over the key tiles with float32 atomics.
//
// Each warp computes its keys' rows of the transposed products, so that the score tile's C layout
// is already the A layout of the next product (the forward's P V trick):
//   S^T  = K Q^T              P^T  = exp2(S^T * scale * log2 e - LSE * log2 e)   (per query column)
//   dP^T = V dO^T             dS^T = P^T (dP^T - delta),  delta = rowsum(dO O) - dLSE
//   dV  += P^T dO             dK  += dS^T Q * scale
// and dS (queries x keys, 16-bit) goes through shared memory for dQ += dS K * scale, which each
// warp computes for one m16 row tile and a 64-column slice of the head dim and adds to the float32
// dQ buffer with atomics (the sum over key tiles is therefore not bitwise reproducible). Under
// torch.use_deterministic_algorithms the key-tile kernel leaves dQ out and attend_dq_tile, a pass
// per query tile that recomputes S and dP, sums it in registers in a fixed order instead.
//
// Shared memory: K and V (kBlockN x D) for the CTA's life; two stages of Q and dO (kBlockM x D)
// with their LSE and delta, the next stage loaded (cp.async) while the current one is computed;
// dS (kBlockM x kBlockN). Tiles swizzled as in the forward. kBlockM = 64 at D = 64 and 32 at
// D = 128 keeps the accumulators (dK, dV: D floats a thread) and one step's S and dP in registers.
//
// Padding: query rows past N load as zeros with LSE +inf, so their P is exactly 0; key rows past M
// are masked to -inf in the tile that holds them and never written. A query without any key (LSE
// -inf) gets LSE +inf too: it contributes nothing, as its zero output says.
#include "flash_fwd.cuh"

namespace sparsescope::cuda {

template <bool kIsBf16_, int kHeadDim_>
struct BwdTraits {
  static constexpr bool kIsBf16 = kIsBf16_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kBlockN = kWarps * 16;                // keys per CTA
  static constexpr int kBlockM = kHeadDim <= 64 ? 64 : 32;   // queries per step
  static constexpr int kMTiles = kBlockM / 16;
  static constexpr int kDqCols = kHeadDim * kMTiles / kWarps;  // dQ columns per warp
  static_assert(kDqCols % 16 == 0 && kWarps % kMTiles == 0, "dQ slices do not tile the head dim");
  using Element = typename ElementOf<kIsBf16>::type;
  static constexpr int kKVBytes = kBlockN * kHeadDim * 2;
  static constexpr int kQBytes = kBlockM * kHeadDim * 2;
  static constexpr int kStageBytes = 2 * kQBytes + 2 * kBlockM * 4;  // Q, dO, LSE, delta
  static constexpr int kDsBytes = kBlockM * kBlockN * 2;
  static constexpr int kSmemBytes = 2 * kKVBytes + 2 * kStageBytes + kDsBytes;
};

// One (batch, head) of the backward: its q, dO, k and v (K/V head h / kv_group), its row maps and
// its index b * H + h into the [B, H, ...] buffers (LSE, delta, dQ, dK, dV).
template <typename Element>
struct BwdPlane {
  const Element *q, *dout, *k, *v;
  RowMap qrows, krows;
  int64_t index;

  __device__ BwdPlane(const BwdParams& p, int b, int h)
      : q(static_cast<const Element*>(p.fwd.q) + b * p.fwd.q_batch_stride + h * p.fwd.q_head_stride),
        dout(static_cast<const Element*>(p.dout) + b * p.do_batch_stride + h * p.do_head_stride),
        k(static_cast<const Element*>(p.fwd.k) + b * p.fwd.k_batch_stride + (h / p.fwd.kv_group) * p.fwd.k_head_stride),
        v(static_cast<const Element*>(p.fwd.v) + b * p.fwd.v_batch_stride + (h / p.fwd.kv_group) * p.fwd.v_head_stride),
        qrows(query_rows(p.fwd, b, h)),
        krows(key_rows(p.fwd, b, h)),
        index(static_cast<int64_t>(b) * p.fwd.heads + h) {}

  // A query's saved LSE times log2 e and its delta; past N, and for a query without keys (LSE
  // -inf), +inf and 0, so that its P is exactly 0.
  __device__ float2 saved(const BwdParams& p, int query) const {
    if (query >= p.fwd.n) return make_float2(INFINITY, 0.f);
    const int64_t row = index * p.fwd.n + qrows(query);
    const float lse = p.lse[row];
    return make_float2(lse == -INFINITY ? INFINITY : lse * 1.4426950408889634f, p.delta[row]);
  }
};

// One step's query rows: Q and dO by cp.async, LSE and delta (BwdPlane::saved) by plain loads.
template <typename Traits>
__device__ __forceinline__ void load_query_step(const BwdParams& p, char* stage,
                                                const BwdPlane<typename Traits::Element>& plane, int qstart) {
  constexpr int kBlockM = Traits::kBlockM;
  const uint32_t s_q = smem_addr(stage);
  load_tile<kBlockM, Traits::kHeadDim, Traits::kThreads>(s_q, plane.q, p.fwd.q_row_stride, qstart, p.fwd.n - qstart,
                                                         plane.qrows);
  load_tile<kBlockM, Traits::kHeadDim, Traits::kThreads>(s_q + Traits::kQBytes, plane.dout, p.do_row_stride, qstart,
                                                         p.fwd.n - qstart, plane.qrows);
  float* s_lse = reinterpret_cast<float*>(stage + 2 * Traits::kQBytes);
  float* s_delta = s_lse + kBlockM;
  for (int i = static_cast<int>(threadIdx.x); i < kBlockM; i += Traits::kThreads) {
    const float2 saved = plane.saved(p, qstart + i);
    s_lse[i] = saved.x;
    s_delta[i] = saved.y;
  }
}

// c1 = A1 B1^T and c2 = A2 B2^T over the head dim, zeroed first: A rows [row0, row0 + 16) of the
// tiles at a1, a2, B rows [0, 8 kNTiles) of the tiles at b1, b2 (swizzled, D wide, shared memory).
// The backward's two score-shaped products (S and dP, or their transposes) in one pass over D.
template <bool kIsBf16, int kHeadDim, int kNTiles>
__device__ __forceinline__ void paired_products(float (&c1)[kNTiles][4], float (&c2)[kNTiles][4], uint32_t a1,
                                                uint32_t b1, uint32_t a2, uint32_t b2, int row0, int lane) {
  using Layout = TileLayout<kHeadDim>;
#pragma unroll
  for (int t = 0; t < kNTiles; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e) c1[t][e] = c2[t][e] = 0.f;
#pragma unroll
  for (int ks = 0; ks < kHeadDim / 16; ++ks) {
    uint32_t f1[4], f2[4];
    const uint32_t a_off = Layout::offset(row0 + lane % 8 + ((lane / 8) % 2) * 8, ks * 2 + lane / 16);
    ldmatrix_x4(f1, a1 + a_off);
    ldmatrix_x4(f2, a2 + a_off);
#pragma unroll
    for (int np = 0; np < kNTiles / 2; ++np) {
      uint32_t g1[4], g2[4];
      const uint32_t b_off = Layout::offset(np * 16 + lane % 8 + (lane / 16) * 8, ks * 2 + (lane / 8) % 2);
      ldmatrix_x4(g1, b1 + b_off);
      ldmatrix_x4(g2, b2 + b_off);
      mma_16816<kIsBf16>(c1[2 * np], f1, g1[0], g1[1]);
      mma_16816<kIsBf16>(c1[2 * np + 1], f1, g1[2], g1[3]);
      mma_16816<kIsBf16>(c2[2 * np], f2, g2[0], g2[1]);
      mma_16816<kIsBf16>(c2[2 * np + 1], f2, g2[2], g2[3]);
    }
  }
}

/// One key tile (kstart) against the query tiles that `tiles` yields (first() / next(): query-tile
/// starts, -1 when done). `needs_mask(qstart)` says whether the step may hold pairs that
/// `visible(query, key)` hides or keys past M. With kDq, also adds dS K to dQ (atomics); without,
/// attend_dq_tile computes dQ in a pass of its own.
template <typename Traits, bool kDq, typename Tiles, typename Visible>
__device__ __forceinline__ void attend_bwd_tile(const BwdParams& p, char* smem, int kstart, int b, int h,
                                                Tiles& tiles, Visible visible) {
  using Element = typename Traits::Element;
  using Layout = TileLayout<Traits::kHeadDim>;
  using DsLayout = TileLayout<Traits::kBlockN>;
  constexpr bool kIsBf16 = Traits::kIsBf16;
  constexpr int kHeadDim = Traits::kHeadDim;
  constexpr int kBlockM = Traits::kBlockM;
  constexpr int kBlockN = Traits::kBlockN;
  constexpr int kThreads = Traits::kThreads;
  constexpr int kNTiles = kBlockM / 8;    // n-tiles of S^T (query columns)
  constexpr int kQSteps = kBlockM / 16;   // k-steps of the products over queries
  constexpr int kDTiles = kHeadDim / 8;   // n-tiles of dK and dV
  constexpr int kDqTiles = Traits::kDqCols / 8;
  const FwdParams& f = p.fwd;

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const uint32_t s_k = smem_addr(smem);
  const uint32_t s_v = s_k + Traits::kKVBytes;
  char* stages = smem + 2 * Traits::kKVBytes;
  char* ds = stages + 2 * Traits::kStageBytes;
  const uint32_t s_ds = smem_addr(ds);

  const BwdPlane<Element> plane(p, b, h);
  float* dq = p.dq + plane.index * f.n * kHeadDim;

  load_tile<kBlockN, kHeadDim, kThreads>(s_k, plane.k, f.k_row_stride, kstart, f.m - kstart, plane.krows);
  load_tile<kBlockN, kHeadDim, kThreads>(s_v, plane.v, f.v_row_stride, kstart, f.m - kstart, plane.krows);
  int qstart = tiles.first();
  int stage = 0;
  if (qstart >= 0) load_query_step<Traits>(p, stages, plane, qstart);
  cp_async_commit();

  const int warp_row = warp * 16;  // this warp's first key in the tile
  const int col0 = (lane % 4) * 2;
  float dk[kDTiles][4], dv[kDTiles][4];
#pragma unroll
  for (int t = 0; t < kDTiles; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[t][e] = dv[t][e] = 0.f;

  while (qstart >= 0) {
    const int qnext = tiles.next();
    if (qnext >= 0) {  // the other stage was last read before the previous step's final barrier
      load_query_step<Traits>(p, stages + (stage ^ 1) * Traits::kStageBytes, plane, qnext);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // this step's Q, dO, LSE and delta (and K, V) landed
    char* cur = stages + stage * Traits::kStageBytes;
    const uint32_t s_q = smem_addr(cur);
    const uint32_t s_do = s_q + Traits::kQBytes;
    const float* s_lse = reinterpret_cast<const float*>(cur + 2 * Traits::kQBytes);
    const float* s_delta = s_lse + kBlockM;

    // S^T = K Q^T and dP^T = V dO^T, this warp's 16 keys against the step's queries.
    float s[kNTiles][4], dp[kNTiles][4];
    paired_products<kIsBf16, kHeadDim>(s, dp, s_k, s_q, s_v, s_do, warp_row, lane);

    if (tiles.needs_mask(qstart))  // rows are keys, columns queries
      mask_tile(s, kstart + warp_row, qstart, lane, [&](int key, int query) { return (key < f.m) & visible(query, key); });
    // P^T and dS^T in place of S^T and dP^T.
#pragma unroll
    for (int t = 0; t < kNTiles; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = t * 8 + col0 + (e % 2);
        const float prob = fast_exp2(s[t][e] * f.scale_log2 - s_lse[col]);
        s[t][e] = prob;
        dp[t][e] = prob * (dp[t][e] - s_delta[col]);
      }

    // dV += P^T dO and dK += dS^T Q: the k-dim is the step's queries.
#pragma unroll
    for (int kk = 0; kk < kQSteps; ++kk) {
      uint32_t pa[4], da[4];
      pa[0] = pack2<kIsBf16>(s[2 * kk][0], s[2 * kk][1]);
      pa[1] = pack2<kIsBf16>(s[2 * kk][2], s[2 * kk][3]);
      pa[2] = pack2<kIsBf16>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pa[3] = pack2<kIsBf16>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
      da[0] = pack2<kIsBf16>(dp[2 * kk][0], dp[2 * kk][1]);
      da[1] = pack2<kIsBf16>(dp[2 * kk][2], dp[2 * kk][3]);
      da[2] = pack2<kIsBf16>(dp[2 * kk + 1][0], dp[2 * kk + 1][1]);
      da[3] = pack2<kIsBf16>(dp[2 * kk + 1][2], dp[2 * kk + 1][3]);
#pragma unroll
      for (int dpair = 0; dpair < kDTiles / 2; ++dpair) {
        uint32_t of[4], qf[4];
        const uint32_t off = Layout::offset(kk * 16 + lane % 8 + ((lane / 8) % 2) * 8, dpair * 2 + lane / 16);
        ldmatrix_x4_trans(of, s_do + off);
        ldmatrix_x4_trans(qf, s_q + off);
        mma_16816<kIsBf16>(dv[2 * dpair], pa, of[0], of[1]);
        mma_16816<kIsBf16>(dv[2 * dpair + 1], pa, of[2], of[3]);
        mma_16816<kIsBf16>(dk[2 * dpair], da, qf[0], qf[1]);
        mma_16816<kIsBf16>(dk[2 * dpair + 1], da, qf[2], qf[3]);
      }
      // dS^T's two 16-bit pairs of this k-step, written transposed: dS[query][key].
      if constexpr (kDq) {
#pragma unroll
        for (int half = 0; half < 2; ++half)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = warp_row + lane / 4 + (e / 2) * 8;
            const int query = kk * 16 + half * 8 + col0 + (e % 2);
            const float2 pair = unpack2<kIsBf16>(da[2 * half + e / 2]);
            *reinterpret_cast<Element*>(ds + DsLayout::offset(query, key / 8) + (key % 8) * 2) =
                static_cast<Element>(e % 2 == 0 ? pair.x : pair.y);
          }
      }
    }
    // dQ += dS K * scale for one m16 row tile and kDqCols columns of this warp.
    if constexpr (kDq) {
      __syncthreads();  // dS complete
      const int mt = warp % Traits::kMTiles;
      const int col_base = (warp / Traits::kMTiles) * Traits::kDqCols;
      float acc[kDqTiles][4];
#pragma unroll
      for (int t = 0; t < kDqTiles; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < kBlockN / 16; ++ks) {
        uint32_t af[4];
        ldmatrix_x4(af, s_ds + DsLayout::offset(mt * 16 + lane % 8 + ((lane / 8) % 2) * 8, ks * 2 + lane / 16));
#pragma unroll
        for (int dpair = 0; dpair < kDqTiles / 2; ++dpair) {
          uint32_t kf[4];
          ldmatrix_x4_trans(kf, s_k + Layout::offset(ks * 16 + lane % 8 + ((lane / 8) % 2) * 8,
                                                     col_base / 8 + dpair * 2 + lane / 16));
          mma_16816<kIsBf16>(acc[2 * dpair], af, kf[0], kf[1]);
          mma_16816<kIsBf16>(acc[2 * dpair + 1], af, kf[2], kf[3]);
        }
      }
      const float scale = f.scale_log2 * 0.69314718055994531f;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int query = qstart + mt * 16 + lane / 4 + r * 8;
        if (query >= f.n) continue;
        float* row = dq + plane.qrows(query) * kHeadDim + col_base + col0;
#pragma unroll
        for (int t = 0; t < kDqTiles; ++t) {
          atomicAdd(row + t * 8, acc[t][2 * r] * scale);
          atomicAdd(row + t * 8 + 1, acc[t][2 * r + 1] * scale);
        }
      }
    }
    __syncthreads();  // every warp is done with this stage (and with dS)
    stage ^= 1;
    qstart = qnext;
  }
  cp_async_wait<0>();  // a key tile without query tiles committed K and V only

  const float scale = f.scale_log2 * 0.69314718055994531f;
  float* dk_out = p.dk + plane.index * f.m * kHeadDim;
  float* dv_out = p.dv + plane.index * f.m * kHeadDim;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int key = kstart + warp_row + lane / 4 + r * 8;
    if (key >= f.m) continue;
    const int64_t row = plane.krows(key) * kHeadDim + col0;
#pragma unroll
    for (int t = 0; t < kDTiles; ++t) {
      *reinterpret_cast<float2*>(dk_out + row + t * 8) = make_float2(dk[t][2 * r] * scale, dk[t][2 * r + 1] * scale);
      *reinterpret_cast<float2*>(dv_out + row + t * 8) = make_float2(dv[t][2 * r], dv[t][2 * r + 1]);
    }
  }
}

/// The dQ pass's shared memory for its tiles: Q and dO, K and V.
template <typename Traits>
struct DqSmem {
  static constexpr int kTiles = 2 * Traits::kQBytes + 2 * Traits::kKVBytes;
};

/// The deterministic dQ pass (torch.use_deterministic_algorithms): one query tile of the forward's
/// shape (FwdTraits: a warp per 16 queries, kBlockN-key tiles from the forward's Tiles policy)
/// recomputes S = Q K^T and dP = dO V^T per key tile and sums dQ += dS K * scale in registers, in
/// the tiles' order, so every dQ row is written once by one CTA. Shared memory: Q and dO (kBlockM x
/// D), K and V (kBlockN x D).
template <typename Traits, typename Tiles, typename Visible>
__device__ __forceinline__ void attend_dq_tile(const BwdParams& p, char* smem, int qstart, int b, int h, Tiles& tiles,
                                               Visible visible) {
  using Element = typename Traits::Element;
  using Layout = TileLayout<Traits::kHeadDim>;
  static_assert(Traits::kMTiles == 1, "one m16 tile per warp");
  constexpr bool kIsBf16 = Traits::kIsBf16;
  constexpr int kHeadDim = Traits::kHeadDim;
  constexpr int kBlockN = Traits::kBlockN;
  constexpr int kThreads = Traits::kThreads;
  constexpr int kNTiles = kBlockN / 8;
  constexpr int kKSteps = kBlockN / 16;
  constexpr int kDTiles = kHeadDim / 8;
  const FwdParams& f = p.fwd;

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const uint32_t s_q = smem_addr(smem);
  const uint32_t s_do = s_q + Traits::kQBytes;
  const uint32_t s_k = s_do + Traits::kQBytes;
  const uint32_t s_v = s_k + Traits::kKVBytes;

  const BwdPlane<Element> plane(p, b, h);

  load_tile<Traits::kBlockM, kHeadDim, kThreads>(s_q, plane.q, f.q_row_stride, qstart, f.n - qstart, plane.qrows);
  load_tile<Traits::kBlockM, kHeadDim, kThreads>(s_do, plane.dout, p.do_row_stride, qstart, f.n - qstart, plane.qrows);
  cp_async_commit();

  const int warp_row = warp * 16;
  const int col0 = (lane % 4) * 2;
  // This lane's two rows (lane / 4 and lane / 4 + 8): LSE * log2 e and delta.
  const float2 saved[2] = {plane.saved(p, qstart + warp_row + lane / 4), plane.saved(p, qstart + warp_row + lane / 4 + 8)};
  float dq[kDTiles][4];
#pragma unroll
  for (int t = 0; t < kDTiles; ++t) dq[t][0] = dq[t][1] = dq[t][2] = dq[t][3] = 0.f;

  for (int kstart = tiles.first(); kstart >= 0;) {
    load_tile<kBlockN, kHeadDim, kThreads>(s_k, plane.k, f.k_row_stride, kstart, f.m - kstart, plane.krows);
    load_tile<kBlockN, kHeadDim, kThreads>(s_v, plane.v, f.v_row_stride, kstart, f.m - kstart, plane.krows);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();  // K_j and V_j (and Q, dO) landed

    // S = Q K^T and dP = dO V^T, this warp's 16 queries against the tile's keys.
    float s[kNTiles][4], dp[kNTiles][4];
    paired_products<kIsBf16, kHeadDim>(s, dp, s_q, s_k, s_do, s_v, warp_row, lane);
    if (tiles.needs_mask(kstart))
      mask_tile(s, qstart + warp_row, kstart, lane, [&](int query, int key) { return (key < f.m) & visible(query, key); });
    // dS = P (dP - delta), P = exp2(S * scale * log2 e - LSE * log2 e), in place of dP.
#pragma unroll
    for (int t = 0; t < kNTiles; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        dp[t][e] = fast_exp2(s[t][e] * f.scale_log2 - saved[e / 2].x) * (dp[t][e] - saved[e / 2].y);

    // dQ += dS K: the k-dim is the tile's keys.
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      uint32_t da[4];
      da[0] = pack2<kIsBf16>(dp[2 * kk][0], dp[2 * kk][1]);
      da[1] = pack2<kIsBf16>(dp[2 * kk][2], dp[2 * kk][3]);
      da[2] = pack2<kIsBf16>(dp[2 * kk + 1][0], dp[2 * kk + 1][1]);
      da[3] = pack2<kIsBf16>(dp[2 * kk + 1][2], dp[2 * kk + 1][3]);
#pragma unroll
      for (int dpair = 0; dpair < kDTiles / 2; ++dpair) {
        uint32_t kf[4];
        ldmatrix_x4_trans(kf, s_k + Layout::offset(kk * 16 + lane % 8 + ((lane / 8) % 2) * 8, dpair * 2 + lane / 16));
        mma_16816<kIsBf16>(dq[2 * dpair], da, kf[0], kf[1]);
        mma_16816<kIsBf16>(dq[2 * dpair + 1], da, kf[2], kf[3]);
      }
    }
    kstart = tiles.next();
    __syncthreads();  // every warp is done reading K_j and V_j
  }
  cp_async_wait<0>();  // a query tile without key tiles committed Q and dO only

  const float scale = f.scale_log2 * 0.69314718055994531f;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int query = qstart + warp_row + lane / 4 + r * 8;
    if (query >= f.n) continue;
    float* row = p.dq + (plane.index * f.n + plane.qrows(query)) * kHeadDim + col0;
#pragma unroll
    for (int t = 0; t < kDTiles; ++t)
      *reinterpret_cast<float2*>(row + t * 8) = make_float2(dq[t][2 * r] * scale, dq[t][2 * r + 1] * scale);
  }
}

}  // namespace sparsescope::cuda
