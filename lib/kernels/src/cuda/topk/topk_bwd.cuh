#pragma once
// TopK backward from the forward's LSE, one warp per query as the forward: the query's distinct key
// rows (topk_key_rows), then per listed key, with each lane holding D / 32 dims of q, dO and dq,
//   s = q . k_j,  P = exp(s * scale - LSE),  dP = dO . v_j,  dS = P (dP - delta)
//   dq += dS k_j,  dk_j += dS q,  dv_j += P dO       (dq, dk scaled by the softmax scale)
// Two warp reductions per key; dk and dv rows are shared between queries, so they are summed in
// float32 with atomics (not bitwise reproducible), dq is the warp's own row.
#include "../common/flash_bwd.cuh"
#include "topk_fwd.cuh"

namespace sparsescope::cuda {

template <bool kIsBf16, int kHeadDim>
__global__ void __launch_bounds__(kTopkWarps * 32) topk_bwd_kernel(const BwdParams bp) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using Element = typename ElementOf<kIsBf16>::type;
  constexpr int kPerLane = kHeadDim / 32;
  extern __shared__ int topk_smem[];
  const FwdParams& p = bp.fwd;

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  int b, h, i;
  if (!topk_query(p, b, h, i)) return;  // warps never meet again
  const BwdPlane<Element> plane(bp, b, h);
  const float2 saved = plane.saved(bp, i);  // LSE * log2 e and delta
  if (saved.x == INFINITY) return;  // no keys: zero gradients (dq is zeroed by the host)
  const int64_t row = plane.qrows(i);

  int* list = topk_smem + warp * (p.topk_table_size + p.topk_k) + p.topk_table_size;
  topk_key_rows(p, topk_smem + warp * (p.topk_table_size + p.topk_k), list, b, h, i, lane);

  auto load = [&](const Element* base, int64_t offset, float (&to)[kPerLane]) {
    const Element* at = base + offset + lane * kPerLane;
#pragma unroll
    for (int e = 0; e < kPerLane; e += 2) {
      const float2 f = unpack2<kIsBf16>(*reinterpret_cast<const uint32_t*>(at + e));
      to[e] = f.x;
      to[e + 1] = f.y;
    }
  };
  auto warp_sum = [](float x) {
#pragma unroll
    for (int o = 16; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
  };
  float q[kPerLane], dout[kPerLane], dq[kPerLane];
  load(plane.q, row * p.q_row_stride, q);
  load(plane.dout, row * bp.do_row_stride, dout);
#pragma unroll
  for (int e = 0; e < kPerLane; ++e) dq[e] = 0.f;
  const float scale = p.scale_log2 * 0.69314718055994531f;
  float* dk_plane = bp.dk + plane.index * p.m * kHeadDim + lane * kPerLane;
  float* dv_plane = bp.dv + plane.index * p.m * kHeadDim + lane * kPerLane;

  for (int slot = 0; slot < p.topk_k; ++slot) {
    const int key = list[slot];  // uniform over the warp
    if (key < 0) continue;
    float k[kPerLane], v[kPerLane];
    load(plane.k, static_cast<int64_t>(key) * p.k_row_stride, k);
    load(plane.v, static_cast<int64_t>(key) * p.v_row_stride, v);
    float s = 0.f, dp = 0.f;
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) {
      s = fmaf(q[e], k[e], s);
      dp = fmaf(dout[e], v[e], dp);
    }
    s = warp_sum(s);
    dp = warp_sum(dp);
    const float prob = fast_exp2(fmaf(s, p.scale_log2, -saved.x));
    const float ds = prob * (dp - saved.y);
    float* dk_row = dk_plane + static_cast<int64_t>(key) * kHeadDim;
    float* dv_row = dv_plane + static_cast<int64_t>(key) * kHeadDim;
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) {
      dq[e] = fmaf(ds, k[e], dq[e]);
      atomicAdd(dk_row + e, ds * scale * q[e]);
      atomicAdd(dv_row + e, prob * dout[e]);
    }
  }
  float* dq_row = bp.dq + (plane.index * p.n + row) * kHeadDim + lane * kPerLane;
#pragma unroll
  for (int e = 0; e < kPerLane; ++e) dq_row[e] = dq[e] * scale;
#else
  __trap();  // built for an architecture without bf16 conversions; can_use refuses such devices
#endif
}

template <bool kIsBf16, int kHeadDim>
void run_topk_bwd(const BwdParams& params, cudaStream_t stream) {
  const int64_t queries = static_cast<int64_t>(params.fwd.batch) * params.fwd.heads * params.fwd.n;
  const dim3 grid(static_cast<unsigned>((queries + kTopkWarps - 1) / kTopkWarps));
  const int smem = topk_smem_bytes(params.fwd.topk_k);
  auto kernel = topk_bwd_kernel<kIsBf16, kHeadDim>;
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  kernel<<<grid, kTopkWarps * 32, smem, stream>>>(params);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace sparsescope::cuda
