#pragma once
// TopK forward for short lists: per-query key lists, so no two queries share a key tile; one warp
// per query on CUDA cores, all in fp32. Lists that keep a large share of the keys, which overlap
// between neighbouring queries, go to tensor cores instead (topk_union_fwd.cuh).
//
// 1. Key set. The warp inserts its listed keys into an open-addressing hash set in shared memory
//    (atomicCAS); a key that is already there (listed twice) and -1 padding become -1 in the
//    warp's key list, so each key counts once (TopK's set semantics, as the reference's sort).
// 2. Scores, 8 keys per step: each quad of lanes takes one key and each lane a quarter of the
//    head dim (its quarter of q lives in registers), reading 16-byte chunks of the key row; two
//    shuffles finish the dot product.
// 3. Online softmax per chunk of 32 keys (4 steps), then O += P V with lanes splitting the head
//    dim: each listed value row is read by the whole warp in one coalesced access.
#include <c10/cuda/CUDAException.h>

#include "../common/flash_fwd.cuh"
#include "../common/launch.h"

namespace sparsescope::cuda {

// The (b, h, i) of this warp's query, one warp per query in (batch, head, token) order; false for a
// warp past the last query.
__device__ __forceinline__ bool topk_query(const FwdParams& p, int& b, int& h, int& i) {
  const int64_t query = static_cast<int64_t>(blockIdx.x) * kTopkWarps + static_cast<int>(threadIdx.x) / 32;
  if (query >= static_cast<int64_t>(p.batch) * p.heads * p.n) return false;
  i = static_cast<int>(query % p.n);
  h = static_cast<int>(query / p.n % p.heads);
  b = static_cast<int>(query / p.n / p.heads);
  return true;
}

// Step 1 for query i of (b, h), by one warp: the rows of its distinct listed keys in `list`
// (p.topk_k entries, -1 for padding and repeats), through the hash set `table`
// (p.topk_table_size ints), both in shared memory.
__device__ __forceinline__ void topk_key_rows(const FwdParams& p, int* table, int* list, int b, int h, int i,
                                              int lane) {
  for (int t = lane; t < p.topk_table_size; t += 32) table[t] = -1;
  __syncwarp();
  const int64_t* index = p.topk_index + b * p.topk_batch_stride + h * p.topk_head_stride +
                         i * p.topk_row_stride;
  const uint32_t slots = static_cast<uint32_t>(p.topk_table_size) - 1;
  const RowMap krows = key_rows(p, b, h);
  for (int slot = lane; slot < p.topk_k; slot += 32) {
    const int64_t key = index[slot * p.topk_col_stride];
    int kept = -1;
    if (key >= 0 && key < p.m) {
      uint32_t at = static_cast<uint32_t>(key) * 2654435761u;
      at = (at ^ (at >> 16)) & slots;
      while (true) {
        const int old = atomicCAS(&table[at], -1, static_cast<int>(key));
        if (old == -1) kept = static_cast<int>(key);
        if (old == -1 || old == key) break;
        at = (at + 1) & slots;
      }
    }
    list[slot] = kept < 0 ? -1 : static_cast<int>(krows(kept));  // the key's row (Permuted: fused)
  }
  __syncwarp();
}

template <bool kIsBf16, int kHeadDim>
__global__ void __launch_bounds__(kTopkWarps * 32) topk_fwd_kernel(const FwdParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using Element = typename ElementOf<kIsBf16>::type;
  constexpr int kQuarter = kHeadDim / 4;    // dims per lane in the scores
  constexpr int kChunks = kQuarter / 8;     // 16-byte chunks per lane and key row
  constexpr int kPerLane = kHeadDim / 32;   // output dims per lane
  extern __shared__ int topk_smem[];

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  int b, h, i;
  if (!topk_query(p, b, h, i)) return;  // warps never meet again

  int* list = topk_smem + warp * (p.topk_table_size + p.topk_k) + p.topk_table_size;
  topk_key_rows(p, topk_smem + warp * (p.topk_table_size + p.topk_k), list, b, h, i, lane);

  const int64_t dest = query_rows(p, b, h)(i);
  const Element* qrow = static_cast<const Element*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride +
                        dest * p.q_row_stride;
  const Element* kbase = static_cast<const Element*>(p.k) + b * p.k_batch_stride + (h / p.kv_group) * p.k_head_stride;
  const Element* vbase = static_cast<const Element*>(p.v) + b * p.v_batch_stride + (h / p.kv_group) * p.v_head_stride;
  const int quarter = lane % 4;
  float qr[kQuarter];
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const uint4 raw = *reinterpret_cast<const uint4*>(qrow + quarter * kQuarter + c * 8);
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 f = unpack2<kIsBf16>(words[e]);
      qr[c * 8 + 2 * e] = f.x;
      qr[c * 8 + 2 * e + 1] = f.y;
    }
  }

  float o[kPerLane];
#pragma unroll
  for (int e = 0; e < kPerLane; ++e) o[e] = 0.f;
  float row_max = -INFINITY;
  float row_sum = 0.f;  // this quad's keys; summed over the 8 quads at the end

  for (int base = 0; base < p.topk_k; base += 32) {
    float score[4];
    int key[4];
#pragma unroll
    for (int st = 0; st < 4; ++st) {
      const int slot = base + st * 8 + lane / 4;
      key[st] = slot < p.topk_k ? list[slot] : -1;
      float dot = 0.f;
      if (key[st] >= 0) {
        const Element* krow = kbase + static_cast<int64_t>(key[st]) * p.k_row_stride + quarter * kQuarter;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
          const uint4 raw = *reinterpret_cast<const uint4*>(krow + c * 8);
          const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const float2 f = unpack2<kIsBf16>(words[e]);
            dot = fmaf(qr[c * 8 + 2 * e], f.x, dot);
            dot = fmaf(qr[c * 8 + 2 * e + 1], f.y, dot);
          }
        }
      }
      dot = quad_sum(dot);
      score[st] = key[st] >= 0 ? dot : -INFINITY;
    }

    // The quads hold the chunk's 32 scores, each copied over its quad's 4 lanes: reduce over quads.
    float mx = fmaxf(fmaxf(score[0], score[1]), fmaxf(score[2], score[3]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 8));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 16));
    mx = fmaxf(mx, row_max);
    const float shift = mx == -INFINITY ? 0.f : mx * p.scale_log2;
    const float alpha = fast_exp2(row_max * p.scale_log2 - shift);
    row_max = mx;
    row_sum *= alpha;
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) o[e] *= alpha;
    float prob[4];
#pragma unroll
    for (int st = 0; st < 4; ++st) {
      prob[st] = fast_exp2(fmaf(score[st], p.scale_log2, -shift));
      row_sum += prob[st];
    }

#pragma unroll
    for (int st = 0; st < 4; ++st)
#pragma unroll
      for (int g = 0; g < 8; ++g) {
        const int kj = __shfl_sync(0xffffffffu, key[st], g * 4);
        const float pj = __shfl_sync(0xffffffffu, prob[st], g * 4);
        if (kj < 0) continue;  // uniform over the warp
        const Element* vrow = vbase + static_cast<int64_t>(kj) * p.v_row_stride + lane * kPerLane;
        if constexpr (kPerLane == 4) {
          const uint2 raw = *reinterpret_cast<const uint2*>(vrow);
          const uint32_t words[2] = {raw.x, raw.y};
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float2 f = unpack2<kIsBf16>(words[e]);
            o[2 * e] = fmaf(pj, f.x, o[2 * e]);
            o[2 * e + 1] = fmaf(pj, f.y, o[2 * e + 1]);
          }
        } else {
          const float2 f = unpack2<kIsBf16>(*reinterpret_cast<const uint32_t*>(vrow));
          o[0] = fmaf(pj, f.x, o[0]);
          o[1] = fmaf(pj, f.y, o[1]);
        }
      }
  }

  float sum = row_sum + __shfl_xor_sync(0xffffffffu, row_sum, 4);
  sum += __shfl_xor_sync(0xffffffffu, sum, 8);
  sum += __shfl_xor_sync(0xffffffffu, sum, 16);
  const float inv = sum > 0.f ? 1.f / sum : 0.f;
  Element* out = static_cast<Element*>(p.out) +
                 ((static_cast<int64_t>(b) * p.heads + h) * p.n + dest) * kHeadDim + lane * kPerLane;
#pragma unroll
  for (int e = 0; e < kPerLane; e += 2)
    *reinterpret_cast<uint32_t*>(out + e) = pack2<kIsBf16>(o[e] * inv, o[e + 1] * inv);
  if (lane == 0)
    p.lse[(static_cast<int64_t>(b) * p.heads + h) * p.n + dest] =
        sum > 0.f ? (row_max * p.scale_log2 + log2f(sum)) * 0.69314718055994531f : -INFINITY;
#else
  __trap();  // built for an architecture without bf16 conversions; can_use refuses such devices
#endif
}

template <bool kIsBf16, int kHeadDim>
void run_topk_fwd(const FwdParams& params, cudaStream_t stream) {
  const int64_t queries = static_cast<int64_t>(params.batch) * params.heads * params.n;
  const dim3 grid(static_cast<unsigned>((queries + kTopkWarps - 1) / kTopkWarps));
  const int smem = topk_smem_bytes(params.topk_k);
  auto kernel = topk_fwd_kernel<kIsBf16, kHeadDim>;
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  kernel<<<grid, kTopkWarps * 32, smem, stream>>>(params);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace sparsescope::cuda
