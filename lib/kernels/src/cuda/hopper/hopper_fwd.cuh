#pragma once
// Note [Hopper forward]
//
// The Dense, BlockSparse and Neighborhood forward on sm_90a's warpgroup MMA, after
// FlashAttention-3's design: warp specialisation with a producer warpgroup feeding two consumer
// warpgroups through a ring of shared-memory stages guarded by mbarriers.
//
// - A CTA owns kBlockM = 128 queries of one (batch, head): consumer warpgroup w (threads 128 (w + 1)
//   and up) computes rows 64 w .. 64 w + 63 with m64n128k16 (S = Q K^T, both operands in shared
//   memory) and m64nDk16 (O += P V, P from registers), so neither S nor P touches shared memory.
//   The online softmax and the output's epilogue are the mma.sync kernels' own (flash_fwd.cuh): a
//   wgmma accumulator holds, per warp, 16 rows in mma.sync's C layout.
// - The producer warpgroup gives most of its registers to the consumers (setmaxnreg: 40 against
//   232) and fills kStages stages of K and V tiles (kBlockN = 128 keys) with cp.async rather than
//   TMA: the copies go through the key RowMap, so a Permuted's key permutation is fused into them
//   exactly as in the mma.sync kernels, and a copy's completion arrives on the stage's "full"
//   mbarrier (cp.async.mbarrier.arrive). Consumers release a stage's K and V separately ("empty"
//   mbarriers, one arrival per warp) as soon as they are done with each (K after the masks, V after
//   its P V), so the next tiles stream in while this tile's softmax and P V run. A producer copy
//   loop issues two 16-byte copies at a time: the producer's 40 registers hold no more addresses.
// - Within a warpgroup the softmax of a tile overlaps the previous tile's P V on the tensor cores
//   (FA3's intra-warpgroup pipelining; the consumer loop says how). The two consumer warpgroups
//   run unsynchronised: while one is in its softmax the other's MMAs keep the tensor cores busy
//   (FA3's ping-pong, here left to the warp schedulers).
// - Tiles are 128-byte swizzled (Sw128Layout): the layout wgmma's descriptors read without bank
//   conflicts, and the cp.async stores of 16-byte chunks land conflict-free too.
// - Which key tiles a query tile visits, and which need element masks, are the mma.sync kernels'
//   policies (dense_key_tiles, block_sparse_key_tiles, neighborhood_key_tiles); partial tiles are
//   zero-filled and masked as there. Dense.mask (a bool mask or an additive bias) is read per score
//   from global memory, through L2: a staged bias tile per stage would not fit beside the K and V
//   stages at D = 128.
//
// Hand-written PTX (wgmma.cuh) rather than CuTe: the kernel shares the mma.sync kernels' policies,
// online softmax and epilogue (plain device code over mma.sync's fragment layout, which wgmma's
// accumulators repeat), its cp.async producer gathers rows through the RowMaps (Permuted) where a
// TMA box cannot, and the build takes no CUTLASS dependency nor its compile time; the PTX needed is
// six MMA shapes, descriptors and barriers.
//
// What FA3 adds and this kernel does not yet: TMA loads and explicit ping-pong barriers.
#include "../block_sparse/block_sparse_fwd.cuh"
#include "../common/flash_fwd.cuh"
#include "../common/launch.h"
#include "../common/static_switch.h"
#include "../dense/dense_fwd.cuh"
#include "../neighborhood/neighborhood_fwd.cuh"
#include "wgmma.cuh"

namespace sparsescope::cuda {

// A tile of kRows rows of kHeadDim 16-bit elements as kHeadDim / 64 column halves of kRows x 128
// bytes each, 16-byte chunk c of a row at chunk c ^ (row % 8) of its 128 bytes: wgmma's 128-byte
// swizzle, atoms of 8 rows (1024 bytes) that must start 1024-byte aligned.
template <int kRows, int kHeadDim>
struct Sw128Layout {
  __device__ static constexpr uint32_t offset(int row, int chunk) {
    return static_cast<uint32_t>((chunk / 8) * kRows * 128 + row * 128 + ((chunk % 8) ^ (row % 8)) * 16);
  }
};

template <bool kIsBf16_, int kHeadDim_>
struct Sm90Traits {
  static constexpr bool kIsBf16 = kIsBf16_;
  static constexpr int kHeadDim = kHeadDim_;
  using Element = typename ElementOf<kIsBf16>::type;
  static constexpr int kConsumers = 2;  // warpgroups of 64 query rows
  static constexpr int kBlockM = 64 * kConsumers;
  static constexpr int kBlockN = 128;
  static constexpr int kStages = kSm90Stages;
  static constexpr int kThreads = 128 * (1 + kConsumers);
  static constexpr int kProducerRegisters = 40;
  static constexpr int kConsumerRegisters = 232;
  static_assert(128 * kProducerRegisters + 128 * kConsumers * kConsumerRegisters <= 65536, "register file");
  static constexpr int kQBytes = kBlockM * kHeadDim * 2;
  static constexpr int kKVBytes = kBlockN * kHeadDim * 2;
  static constexpr int kBarrierBytes = 4 * kStages * 8;  // full and empty mbarriers of K and V
  // Shared memory: 1024 bytes of alignment slack, Q, the K and V stages, the barriers; a
  // BlockSparse key-block list follows.
  static constexpr int kSmemBytes = 1024 + kQBytes + 2 * kStages * kKVBytes + kBarrierBytes;
};

// A policy, made per CTA from the parameters, the query tile and its shared memory (after the
// barriers), gives the CTA its key tiles (tiles(); every thread of the CTA calls it before the
// warpgroups part), which keys of a tile its queries see (visible(stage, query, key)), a bias to add
// to the raw scores (add_bias) and, with kStagesKeys, per-key data the producer stages with each K
// tile (stage_keys; the stage's "full" barrier then also counts the producer's plain arrivals).

// Dense, causal or not; with kMasked a Dense.mask (a bool mask or an additive bias), read per score
// from global memory: a staged bias tile per stage would not fit beside the K and V stages at D = 128.
template <typename Traits, bool kCausal, bool kMasked>
struct Sm90Dense {
  static constexpr bool kHeaviestFirst = kCausal;  // the last query tiles see the most keys
  static constexpr bool kStagesKeys = false;
  using Mask = DenseMask<Traits::kIsBf16, Traits::kBlockM, Traits::kBlockN, Traits::kThreads>;
  const FwdParams* p;
  int qstart;
  Mask mask{};
  __device__ Sm90Dense(const FwdParams& params, int query_start, int b, int h, char*) : p(&params), qstart(query_start) {
    if constexpr (kMasked) {
      mask = dense_mask_of<Mask>(params, b, h);
      mask.staged = false;
    }
  }
  __device__ DenseTiles<Traits::kBlockN> tiles() const {
    return dense_key_tiles<Traits::kBlockM, Traits::kBlockN, kCausal>(*p, qstart, kMasked && p->mask_is_bool);
  }
  __device__ bool visible(int, int query, int key) const {
    return DenseVisible<kCausal>{}(query, key) && (!kMasked || mask.keep(query, key));
  }
  template <int kNTiles>
  __device__ void add_bias(float (&s)[1][kNTiles][4], int kstart, int row0, int lane) const {
    if constexpr (kMasked) mask.add(s, nullptr, qstart, kstart, row0, lane);
  }
  __device__ void stage_keys(int, int, int) const {}
};

// BlockSparse: the query block's listed key blocks, all of a listed block visible.
template <typename Traits>
struct Sm90BlockSparse {
  static constexpr bool kHeaviestFirst = false;
  static constexpr bool kStagesKeys = false;
  const FwdParams* p;
  int qstart, b, h;
  char* list_smem;
  __device__ Sm90BlockSparse(const FwdParams& params, int query_start, int batch, int head, char* smem)
      : p(&params), qstart(query_start), b(batch), h(head), list_smem(smem) {}
  __device__ BlockListTiles<Traits::kBlockN> tiles() const {
    return block_sparse_key_tiles<Traits::kThreads, Traits::kBlockN>(*p, list_smem, qstart, b, h);
  }
  __device__ bool visible(int, int, int) const { return true; }
  template <int kNTiles>
  __device__ void add_bias(float (&)[1][kNTiles][4], int, int, int) const {}
  __device__ void stage_keys(int, int, int) const {}
};

// Neighborhood: the windows of the query tile and the key tiles they reach (the mma.sync kernel's
// neighborhood_key_tiles); the producer stages each K tile's key coordinates (key_coords) beside it,
// and a score's test is the mma.sync kernel's in_windows. Shared memory: the windows [3][kBlockM],
// the staged coordinates [kStages][kBlockN], the key-tile list.
template <typename Traits>
struct Sm90Neighborhood {
  static constexpr bool kHeaviestFirst = false;
  static constexpr bool kStagesKeys = true;
  static_assert(Traits::kBlockM == kBlockM && Traits::kBlockN == 128, "windows are laid out kBlockM apart");
  const FwdParams* p;
  int qstart;
  AxisBox* windows;
  KeyCoords* keys;
  __device__ Sm90Neighborhood(const FwdParams& params, int query_start, int, int, char* smem)
      : p(&params), qstart(query_start), windows(reinterpret_cast<AxisBox*>(smem)),
        keys(reinterpret_cast<KeyCoords*>(windows + 3 * kBlockM)) {}
  __device__ BlockListTiles<Traits::kBlockN, true> tiles() const {
    return neighborhood_key_tiles<Traits::kThreads, Traits::kBlockN>(
        *p, windows, reinterpret_cast<char*>(keys + Traits::kStages * Traits::kBlockN), qstart);
  }
  __device__ bool visible(int stage, int query, int key) const {
    return in_windows(windows + (query - qstart), keys[stage * Traits::kBlockN + key % Traits::kBlockN]);
  }
  template <int kNTiles>
  __device__ void add_bias(float (&)[1][kNTiles][4], int, int, int) const {}
  // Producer thread `tid` (< kBlockN) stages the coordinates of key kstart + tid.
  __device__ void stage_keys(int stage, int kstart, int tid) const {
    keys[stage * Traits::kBlockN + tid] = key_coords(*p, kstart + tid);
  }
};

template <typename Traits, typename Policy>
__global__ void __launch_bounds__(Traits::kThreads, 1) sm90_fwd_kernel(const FwdParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace sm90;
  using Element = typename Traits::Element;
  constexpr bool kIsBf16 = Traits::kIsBf16;
  constexpr int kHeadDim = Traits::kHeadDim;
  constexpr int kBlockN = Traits::kBlockN;
  constexpr int kStages = Traits::kStages;
  constexpr int kKVBytes = Traits::kKVBytes;
  using KVLayout = Sw128Layout<kBlockN, kHeadDim>;
  using QLayout = Sw128Layout<64, kHeadDim>;  // one consumer warpgroup's rows

  extern __shared__ char smem_raw[];
  const uint32_t raw = smem_addr(smem_raw);
  const uint32_t s_q = (raw + 1023) & ~1023u;
  const uint32_t s_k = s_q + Traits::kQBytes;
  const uint32_t s_v = s_k + kStages * kKVBytes;
  const uint32_t bars = s_v + kStages * kKVBytes;
  char* policy_smem = smem_raw + (bars - raw) + Traits::kBarrierBytes;
  const auto full_k = [bars](int stage) { return bars + 8 * stage; };
  const auto full_v = [bars](int stage) { return bars + 8 * (kStages + stage); };
  const auto empty_k = [bars](int stage) { return bars + 8 * (2 * kStages + stage); };
  const auto empty_v = [bars](int stage) { return bars + 8 * (3 * kStages + stage); };

  const int qtile = Policy::kHeaviestFirst ? static_cast<int>(gridDim.x - 1 - blockIdx.x) : static_cast<int>(blockIdx.x);
  const int qstart = qtile * Traits::kBlockM;
  const int b = static_cast<int>(blockIdx.z);
  const int h = static_cast<int>(blockIdx.y);
  const int warpgroup = static_cast<int>(threadIdx.x) / 128;
  const int tid = static_cast<int>(threadIdx.x) % 128;

  if (threadIdx.x == 0) {
    for (int stage = 0; stage < kStages; ++stage) {
      // Each producer thread's cp.async arrival, and its plain one after staging its key's data.
      mbarrier_init(full_k(stage), Policy::kStagesKeys ? 256 : 128);
      mbarrier_init(full_v(stage), 128);
      mbarrier_init(empty_k(stage), 4 * Traits::kConsumers);  // each consumer warp
      mbarrier_init(empty_v(stage), 4 * Traits::kConsumers);
    }
  }
  const Policy policy(p, qstart, b, h, policy_smem);
  auto tiles = policy.tiles();
  __syncthreads();  // the barriers are initialised (and a key-tile list built)

  if (warpgroup == 0) {  // the producer
    setmaxnreg_dec<Traits::kProducerRegisters>();
    const int kvh = h / p.kv_group;
    const Element* k = static_cast<const Element*>(p.k) + b * p.k_batch_stride + kvh * p.k_head_stride;
    const Element* v = static_cast<const Element*>(p.v) + b * p.v_batch_stride + kvh * p.v_head_stride;
    const RowMap krows = key_rows(p, b, h);
    int it = 0;
    for (int kstart = tiles.first(); kstart >= 0; kstart = tiles.next(), ++it) {
      const int stage = it % kStages;
      const int phase = (it / kStages) & 1;
      mbarrier_wait(empty_k(stage), phase ^ 1);
      load_tile<kBlockN, kHeadDim, 128, KVLayout, 2>(s_k + stage * kKVBytes, k, p.k_row_stride, kstart, p.m - kstart,
                                                  krows, tid);
      cp_async_mbarrier_arrive(full_k(stage));
      if constexpr (Policy::kStagesKeys) {
        policy.stage_keys(stage, kstart, tid);
        mbarrier_arrive(full_k(stage));
      }
      mbarrier_wait(empty_v(stage), phase ^ 1);
      load_tile<kBlockN, kHeadDim, 128, KVLayout, 2>(s_v + stage * kKVBytes, v, p.v_row_stride, kstart, p.m - kstart,
                                                  krows, tid);
      cp_async_mbarrier_arrive(full_v(stage));
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    return;
  }

  setmaxnreg_inc<Traits::kConsumerRegisters>();
  const int wg = warpgroup - 1;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int row0 = 64 * wg + 16 * warp;  // this warp's first row in the query tile
  const uint32_t s_qw = s_q + wg * (64 * kHeadDim * 2);
  const Element* q = static_cast<const Element*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride;
  const RowMap qrows = query_rows(p, b, h);
  load_tile<64, kHeadDim, 128, QLayout>(s_qw, q, p.q_row_stride, qstart + 64 * wg, p.n - qstart - 64 * wg, qrows,
                                        tid);
  cp_async_commit();
  cp_async_wait<0>();
  fence_proxy_async();
  named_barrier_sync(1 + wg, 128);  // the warpgroup's Q rows landed

  constexpr int kNTiles = kBlockN / 8;
  constexpr int kDTiles = kHeadDim / 8;
  float o[kDTiles][4];
#pragma unroll
  for (int t = 0; t < kDTiles; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.f, 0.f};

  constexpr int kKSteps = kBlockN / 16;
  // Key tile `it` sits in stage it % kStages, filled for the (it / kStages)-th time.
  const auto stage_of = [](int it) { return it % kStages; };
  const auto phase_of = [](int it) { return (it / kStages) & 1; };
  // S = Q K^T of tile `it`, issued as one wgmma group (each group behind its own wgmma.fence, as
  // ptxas needs to keep two in flight): k16 steps of 32 bytes within a 128-byte row,
  // the next column half after 64.
  const auto issue_scores = [&](int it, float (&s)[1][kNTiles][4]) {
    const uint32_t s_ks = s_k + stage_of(it) * kKVBytes;
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < kHeadDim / 16; ++ks) {
      const uint32_t a = s_qw + (ks / 4) * (64 * 128) + (ks % 4) * 32;
      const uint32_t bk = s_ks + (ks / 4) * (kBlockN * 128) + (ks % 4) * 32;
      wgmma_ss_n128<kIsBf16>(s[0], sw128_desc(a, 16, 1024), sw128_desc(bk, 16, 1024), ks > 0);
    }
    wgmma_commit();
  };
  // O += P V of tile `it`, issued as one wgmma group: V's 16-key steps are 2048 bytes apart, its
  // column halves a stage half apart.
  const auto issue_pv = [&](int it, const uint32_t (&pa)[kKSteps][4]) {
    const uint32_t s_vs = s_v + stage_of(it) * kKVBytes;
    fence_operands(o);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk)
      wgmma_rs<kIsBf16, kHeadDim>(o, pa[kk], sw128_desc(s_vs + kk * 16 * 128, kBlockN * 128, 1024), 1);
    wgmma_commit();
  };
  // Tile `it`'s scores (landed) to unnormalised probabilities in place: bias and masks, K released,
  // the softmax update (alpha: the rescale the output accumulated so far owes).
  const auto to_probabilities = [&](int it, int kstart, float (&s)[1][kNTiles][4], float (&alpha)[2]) {
    policy.add_bias(s, kstart, row0, lane);
    if (tiles.needs_mask(kstart)) {
      mask_tile(s[0], qstart + row0, kstart, lane,
                [&](int query, int key) { return (key < p.m) & policy.visible(stage_of(it), query, key); });
    }
    __syncwarp();
    if (lane == 0) mbarrier_arrive(empty_k(stage_of(it)));  // K and its staged key data read
    softmax_update(s[0], row_max, row_sum, p.scale_log2, alpha);
  };
  const auto to_fragments = [&](const float (&s)[1][kNTiles][4], uint32_t (&pa)[kKSteps][4]) {
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) p_fragment<kIsBf16>(pa[kk], s[0], kk);
  };
  // Waits for tile `it`'s P V, then releases its V.
  const auto finish_pv = [&](int it, uint32_t (&pa)[kKSteps][4]) {
    wgmma_wait<0>();
    fence_operands(o);
    fence_operands(pa);  // P's registers stay P's until the MMA has read them
    __syncwarp();
    if (lane == 0) mbarrier_arrive(empty_v(stage_of(it)));
  };

  // FA3's intra-warpgroup overlap: tile it's S = Q K^T is issued together with tile it - 1's P V,
  // and the softmax of tile it runs while that P V is still on the tensor cores. The output takes
  // tile it - 1's rescale just before its P V is issued (O = alpha_(it-1) O + P_(it-1) V_(it-1)), and
  // tile it's probabilities become A fragments once that P V has read the previous ones.
  int kstart = tiles.first();
  if (kstart >= 0) {
    float s[1][kNTiles][4];  // one m16 tile per warp, as DenseMask::add takes it
    uint32_t pa[kKSteps][4];
    float alpha[2];
    int it = 0;
    mbarrier_wait(full_k(0), 0);
    fence_proxy_async();
    issue_scores(0, s);
    wgmma_wait<0>();
    fence_operands(s[0]);
    to_probabilities(0, kstart, s, alpha);
    to_fragments(s, pa);
    for (int next = tiles.next(); next >= 0; next = tiles.next()) {
      ++it;
      mbarrier_wait(full_k(stage_of(it)), phase_of(it));
      mbarrier_wait(full_v(stage_of(it - 1)), phase_of(it - 1));
      fence_proxy_async();
      issue_scores(it, s);
      rescale_rows(o, alpha);
      issue_pv(it - 1, pa);
      wgmma_wait<1>();  // the scores (the older group)
      fence_operands(s[0]);
      to_probabilities(it, next, s, alpha);
      finish_pv(it - 1, pa);
      to_fragments(s, pa);
    }
    mbarrier_wait(full_v(stage_of(it)), phase_of(it));
    fence_proxy_async();
    rescale_rows(o, alpha);
    issue_pv(it, pa);
    finish_pv(it, pa);
  }
  store_rows<kIsBf16>(p, o, row_max, row_sum, b, h, qstart, row0, lane, qrows);
#else
  __trap();  // compiled for sm_90a only; sm90_fwd_loadable() refuses other devices
#endif
}

template <bool kIsBf16, int kHeadDim>
void run_sm90_fwd(const FwdParams& params, Sm90Pattern pattern, cudaStream_t stream) {
  using Traits = Sm90Traits<kIsBf16, kHeadDim>;
  static_assert(Traits::kSmemBytes == sm90_smem_bytes(kHeadDim));
  if (pattern == Sm90Pattern::kBlockSparse) {
    launch_query_tiles<Traits>(sm90_fwd_kernel<Traits, Sm90BlockSparse<Traits>>, params,
                               Traits::kSmemBytes + block_list_smem_bytes(params.num_k_blocks), stream);
    return;
  }
  if (pattern == Sm90Pattern::kNeighborhood) {
    launch_query_tiles<Traits>(sm90_fwd_kernel<Traits, Sm90Neighborhood<Traits>>, params,
                               Traits::kSmemBytes + sm90_neighborhood_smem_bytes(params.num_k_blocks), stream);
    return;
  }
  SPARSESCOPE_BOOL_SWITCH(params.causal, kCausal, [&] {
    SPARSESCOPE_BOOL_SWITCH(params.mask != nullptr, kMasked, [&] {
      launch_query_tiles<Traits>(sm90_fwd_kernel<Traits, Sm90Dense<Traits, kCausal, kMasked>>, params,
                                 Traits::kSmemBytes, stream);
    });
  });
}

}  // namespace sparsescope::cuda
