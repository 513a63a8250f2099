#pragma once
// The plain parameter block of every fused forward kernel (flash-attention's Flash_fwd_params):
// pointers, element strides and sizes, filled once on the host after validation. No at::Tensor
// reaches device code, so the kernels' translation units include no ATen.
#include <cstdint>

namespace sparsescope::cuda {

/// Division of non-negative int32 values by a divisor fixed for a launch, as a multiply-high and a
/// shift (Granlund and Montgomery; CUTLASS's FastDivmod): made on the host by fast_divisor().
struct FastDivisor {
  uint32_t divisor, mul, shift;
#if defined(__CUDACC__)
  __host__ __device__
#endif
  int div(int n) const {
    const auto u = static_cast<uint32_t>(n);
#if defined(__CUDA_ARCH__)
    const uint32_t high = __umulhi(u, mul);
#else
    const auto high = static_cast<uint32_t>((uint64_t{u} * mul) >> 32);
#endif
    return static_cast<int>((high + u) >> shift);
  }
};

/// The FastDivisor of `d` >= 1: shift = ceil(log2 d), mul = 2^32 (2^shift - d) / d + 1, exact for
/// dividends below 2^31.
inline FastDivisor fast_divisor(uint32_t d) {
  uint32_t shift = 0;
  while ((uint64_t{1} << shift) < d) ++shift;
  const uint64_t mul = ((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1;
  return {d, static_cast<uint32_t>(mul), shift};
}

struct FwdParams {
  // q [B, H, N, D], k and v [B, H_kv, M, D] (query head h reads K/V head h / kv_group, grouped-query
  // attention): the last dim is contiguous, the other strides (in
  // elements) are free, which takes q/k/v views of a packed qkv projection without copies.
  const void* q;
  const void* k;
  const void* v;
  int64_t q_batch_stride, q_head_stride, q_row_stride;
  int64_t k_batch_stride, k_head_stride, k_row_stride;
  int64_t v_batch_stride, v_head_stride, v_row_stride;
  // out [B, H, N, D] and lse [B, H, N] (float32) are allocated contiguous by the launcher.
  void* out;
  float* lse;
  int batch, heads, n, m;
  int kv_group;      // heads / H_kv
  float scale_log2;  // softmax scale (> 0) times log2(e): the kernels exponentiate with exp2

  // Dense
  bool causal;
  // Dense.mask [B|1, H|1, N, M]: bool (nonzero = keep) or an additive bias of the query dtype,
  // added to the scaled scores; nullptr when none. Strides in elements, 0 along a size-1 dim.
  const void* mask;
  bool mask_is_bool;
  bool mask_staged;  // a bias whose rows are copied in 16-byte chunks (contiguous rows, 16-byte
                     // aligned rows and planes, M a multiple of 8): staged per tile in shared memory
  int64_t mask_batch_stride, mask_head_stride, mask_row_stride, mask_col_stride;
  float inv_scale;  // 1 / softmax scale: the kernels add bias * inv_scale to the unscaled scores

  // BlockSparse (FlexAttention's BlockMask layout, int32). Strides are in elements; a dim of size 1
  // (pattern shared over batch or heads) has stride 0.
  const int32_t* kv_count;
  const int32_t* kv_index;
  int64_t count_batch_stride, count_head_stride, count_row_stride;
  int64_t index_batch_stride, index_head_stride, index_row_stride, index_col_stride;
  int index_width;
  const int32_t* full_kv_count;  // nullptr when the pattern has no full blocks
  const int32_t* full_kv_index;
  int64_t full_count_batch_stride, full_count_head_stride, full_count_row_stride;
  int64_t full_index_batch_stride, full_index_head_stride, full_index_row_stride,
      full_index_col_stride;
  int full_index_width;
  int block_q, block_k;
  int num_k_blocks;  // ceil(m / block_k)

  // Neighborhood: the grid padded at the front to 3 axes (extent, kernel and dilation 1, not
  // causal), tokens in row-major order (N = M = the grid's cells); each axis's stride in tokens.
  // The kernel divides tokens by the strides (FastDivisor: no integer division per score).
  int nb_extent[3], nb_kernel[3], nb_dilation[3];
  bool nb_causal[3];
  FastDivisor nb_stride[3];

  // Permuted, fused into the loads and stores: position a of the problem the inner pattern
  // describes reads query row q_perm[a] and key/value row kv_perm[a], and writes its output and LSE
  // to row q_perm[a]. [B|1, H|1, N] and [B|1, H|1, M] int64 with a contiguous last dim; nullptr
  // when not permuted.
  const int64_t* q_perm;
  const int64_t* kv_perm;
  int64_t q_perm_batch_stride, q_perm_head_stride, kv_perm_batch_stride, kv_perm_head_stride;

  // TopK (int64 key lists, -1 pads), strides as above.
  const int64_t* topk_index;
  int64_t topk_batch_stride, topk_head_stride, topk_row_stride, topk_col_stride;
  int topk_k;
  int topk_table_size;  // per-query hash set for duplicate keys: a power of two >= 2 * topk_k
};

/// The fused backward (flash_bwd.cuh): the forward's parameters (pattern fields and permutation
/// included) and the gradients' buffers.
struct BwdParams {
  FwdParams fwd;
  const void* dout;  // dL/dout [B, H, N, D], last dim contiguous, strides in elements
  int64_t do_batch_stride, do_head_stride, do_row_stride;
  const float* lse;    // the forward's [B, H, N], contiguous
  const float* delta;  // rowsum(dout * out) - dL/dLSE, [B, H, N] float32 contiguous
  float* dq;           // [B, H, N, D] float32 contiguous, zeroed: summed over key tiles with atomics
  float* dk;           // [B, H, M, D] float32 contiguous per query head (the host sums GQA groups)
  float* dv;
  bool deterministic;  // dQ by a pass per query tile instead of atomics (bitwise reproducible)
  // BlockSparse: for each key block the query blocks that see it (the transposed union of the
  // partial and full lists), ascending, int32 [B|1, H|1, ceil(M / block_k)] and [..., W]; strides
  // in elements, 0 along a size-1 dim, the last dim contiguous.
  const int32_t* q_count;
  const int32_t* q_index;
  int64_t q_count_batch_stride, q_count_head_stride;
  int64_t q_index_batch_stride, q_index_head_stride, q_index_row_stride;
};

}  // namespace sparsescope::cuda
