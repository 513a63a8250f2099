#pragma once
// Host entry points of the fused forward kernels. Each (kernel, dtype, head dim) is explicitly
// instantiated in its own .cu file under src/cuda/<kernel>/, so a 2-core build compiles them in
// parallel and no translation unit holds every instantiation. This header holds no device code
// and no ATen: the host side (src/cuda_backend.cpp) includes it to launch.
#include <cuda_runtime_api.h>

#include "params.h"

namespace sparsescope::cuda {

/// Dense, optionally causal (params.causal): one CTA per kBlockM queries of one (batch, head).
template <bool kIsBf16, int kHeadDim>
void run_dense_fwd(const FwdParams& params, cudaStream_t stream);

/// BlockSparse: params.block_q a multiple of kBlockM, params.block_k of kBlockN.
template <bool kIsBf16, int kHeadDim>
void run_block_sparse_fwd(const FwdParams& params, cudaStream_t stream);

/// Neighborhood: params.nb_* describe the grid; params.num_k_blocks is ceil(M / kBlockN).
template <bool kIsBf16, int kHeadDim>
void run_neighborhood_fwd(const FwdParams& params, cudaStream_t stream);

/// TopK: one warp per query, gathering its listed keys.
template <bool kIsBf16, int kHeadDim>
void run_topk_fwd(const FwdParams& params, cudaStream_t stream);

/// TopK on tensor cores (topk/topk_union_fwd.cuh): one CTA per kBlockM queries over the union of
/// their listed keys; for lists that keep a large share of the keys (topk_union_pays).
template <bool kIsBf16, int kHeadDim>
void run_topk_union_fwd(const FwdParams& params, cudaStream_t stream);

/// The fused backward of Dense (no Dense.mask) and BlockSparse (params.q_count set), Permuted over
/// either included: one CTA per kBwdBlockN keys of one (batch, head).
template <bool kIsBf16, int kHeadDim>
void run_attention_bwd(const BwdParams& params, cudaStream_t stream);

/// The TopK backward (Permuted over TopK included): one warp per query, dk and dv by atomics into
/// zeroed buffers.
template <bool kIsBf16, int kHeadDim>
void run_topk_bwd(const BwdParams& params, cudaStream_t stream);

/// Tile sizes of the tensor-core kernels (Dense and BlockSparse), which can_use checks against;
/// they mirror FwdTraits in flash_fwd.cuh (static_asserts there keep them equal).
constexpr int kBlockM = 128;
constexpr int kBlockN = 64;

/// Dynamic shared memory of the tensor-core kernels' tiles.
constexpr int tile_smem_bytes(int head_dim) { return (kBlockM + 2 * kBlockN) * head_dim * 2; }

/// The backward's keys per CTA and its dynamic shared memory (BwdTraits in flash_bwd.cuh): K and V,
/// two stages of Q, dO, LSE and delta, and dS.
constexpr int kBwdBlockN = 64;
constexpr int bwd_block_m(int head_dim) { return head_dim <= 64 ? 64 : 32; }
constexpr int bwd_smem_bytes(int head_dim) {
  return 2 * kBwdBlockN * head_dim * 2 + 2 * (2 * bwd_block_m(head_dim) * head_dim * 2 + 2 * bwd_block_m(head_dim) * 4) +
         bwd_block_m(head_dim) * kBwdBlockN * 2;
}

/// The deterministic dQ pass's dynamic shared memory for Q, dO, K and V (forward tiles), before a
/// BlockSparse key-block list.
constexpr int dq_smem_bytes(int head_dim) { return (2 * kBlockM + 2 * kBlockN) * head_dim * 2; }

/// Shared memory of the BlockSparse kernel's key-block set (a bitmap), the list made of it and
/// its length, beyond the tiles.
constexpr int block_list_smem_bytes(int num_k_blocks) {
  return ((num_k_blocks + 31) / 32 + num_k_blocks + 1) * 4;
}

/// Shared memory of the Neighborhood kernel: the tiles, its queries' windows (3 axes of 4 ints
/// each), the staged coordinates of a key tile (8 ints a key) and the list of its key tiles.
constexpr int neighborhood_smem_bytes(int head_dim, int num_k_tiles) {
  return tile_smem_bytes(head_dim) + 3 * kBlockM * 16 + kBlockN * 32 + block_list_smem_bytes(num_k_tiles);
}

/// The TopK kernel: warps per CTA, and the shared memory of one warp's duplicate filter (an open
/// addressing hash set of topk_table_size ints) and key list (topk_k ints).
constexpr int kTopkWarps = 4;
constexpr int topk_table_size(int topk_k) {
  int size = 32;
  while (size < 2 * topk_k) size *= 2;
  return size;
}
constexpr int topk_smem_bytes(int topk_k) {
  return kTopkWarps * (topk_table_size(topk_k) + topk_k) * 4;
}

/// The Hopper forward (hopper/hopper_fwd.cuh, built for sm_90a only): Dense, BlockSparse with
/// block_q a multiple of kSm90BlockM and block_k of kSm90BlockN, or Neighborhood (params.num_k_blocks
/// = ceil(M / kSm90BlockN) for the last two).
enum class Sm90Pattern { kDense, kBlockSparse, kNeighborhood };
template <bool kIsBf16, int kHeadDim>
void run_sm90_fwd(const FwdParams& params, Sm90Pattern pattern, cudaStream_t stream);

/// Its tile sizes, stages and dynamic shared memory (Sm90Traits; a BlockSparse key-block list comes
/// on top).
constexpr int kSm90BlockM = 128;
constexpr int kSm90BlockN = 128;
constexpr int kSm90Stages = 2;
constexpr int sm90_smem_bytes(int head_dim) {
  return 1024 + (kSm90BlockM + 2 * kSm90Stages * kSm90BlockN) * head_dim * 2 + 4 * kSm90Stages * 8;
}
/// Beyond sm90_smem_bytes, the Neighborhood kernel's: its queries' windows (3 axes of 16 bytes), each
/// stage's staged key coordinates (32 bytes a key) and its key-tile list.
constexpr int sm90_neighborhood_smem_bytes(int num_k_tiles) {
  return 3 * kSm90BlockM * 16 + kSm90Stages * kSm90BlockN * 32 + block_list_smem_bytes(num_k_tiles);
}

/// Whether the current device can run the Hopper forward: the build holds its sm_90a image
/// (SPARSESCOPE_WITH_SM90) and the device is an sm_90 one.
bool sm90_fwd_loadable();

/// The union kernel's dynamic shared memory for M keys: the tiles, kBlockM + 1 bitmaps over the keys
/// (4-byte words, padded to 8 bytes), the union's rows (int64) and list (int32), its length.
constexpr int64_t topk_union_smem_bytes(int head_dim, int64_t m) {
  const int64_t words = (m + 31) / 32;
  return tile_smem_bytes(head_dim) + ((kBlockM + 1) * words + (words & 1)) * 4 + m * 8 + m * 4 + 4;
}
/// Whether the union kernel is the cheaper TopK forward: lists of k keys out of M that keep at least
/// an eighth of them, whose unions over 128 queries stay a small multiple of k.
constexpr bool topk_union_pays(int64_t k, int64_t m) { return 8 * k >= m; }

/// The binary version (major * 10 + minor) of the fused kernels' code that the current device
/// runs, or 0 when the build holds no image it can load (TORCH_CUDA_ARCH_LIST left its
/// architecture out).
int loadable_arch();

/// The binary version of the image of `kernel` (a __global__ function) that the current device
/// loads, or 0 when the build holds none for it: what loadable_arch and sm90_fwd_loadable ask of a
/// probe kernel compiled with the same flags as the real ones.
inline int image_version(const void* kernel) {
  cudaFuncAttributes attributes{};
  if (cudaFuncGetAttributes(&attributes, kernel) != cudaSuccess) {
    (void)cudaGetLastError();  // no image for this device: an answer, not an error to keep
    return 0;
  }
  return attributes.binaryVersion;
}

}  // namespace sparsescope::cuda
