// Note [Basis top-k]
//
// One warp per row (a query of one batch and head): the lanes compute the row's N scores, each a
// sum of T basis entries weighted by the row's coefficients (staged in the warp's shared memory),
// into the warp's shared memory as order-preserving unsigned ints; a radix select then finds the
// k-th largest: four passes over the row, each a 256-bin histogram (shared-memory atomics) of the
// next 8 bits of the candidates that match the bits fixed so far, whose bins the lanes scan from the
// top (lane l owns bins 255 - 8l .. 248 - 8l) to fix 8 more bits of the k-th largest value. A last
// pass writes the keys above it, and the lowest-indexed keys equal to it until k are written, in
// index order by warp ballots. No [rows, N] tensor, no sort, and each row costs 6 passes over N
// values in shared memory where a warp arg-max needs k.
#include "basis_topk.h"

#include <c10/cuda/CUDAException.h>

#include <algorithm>

namespace sparsescope::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kBins = 256;
constexpr int kMaxTerms = static_cast<int>(kBasisTopkMaxTerms);
constexpr unsigned kFull = 0xffffffffu;

// Larger floats map to larger unsigned ints; -0 is made +0 first so that the two compare equal.
__device__ __forceinline__ uint32_t ordered(float x) {
  const uint32_t bits = __float_as_uint(x + 0.f);
  return (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
}

__global__ void __launch_bounds__(kWarps * 32) basis_topk_kernel(const BasisTopkShape s, const float* values,
                                                                  const int64_t* slots, const float* basis,
                                                                  int64_t* index) {
  extern __shared__ uint32_t smem[];
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  if (row >= s.rows) return;  // the warps never synchronise across the CTA
  const int n = static_cast<int>(s.keys);
  const int terms = static_cast<int>(s.terms);
  uint32_t* keys = smem + static_cast<int64_t>(warp) * (n + kBins + 2 * kMaxTerms);
  uint32_t* hist = keys + n;
  int* term_slot = reinterpret_cast<int*>(hist + kBins);
  float* term_value = reinterpret_cast<float*>(term_slot + kMaxTerms);

  if (lane < terms) {
    term_value[lane] = values[row * terms + lane];
    // Checked on the CPU; kept in bounds here.
    term_slot[lane] = static_cast<int>(min(max(slots[row * terms + lane], int64_t{0}), s.slots - 1));
  }
  __syncwarp();
  for (int key = lane; key < n; key += 32) {
    float score = 0.f;
    for (int t = 0; t < terms; ++t) score = fmaf(term_value[t], basis[static_cast<int64_t>(term_slot[t]) * n + key], score);
    keys[key] = ordered(score);
  }

  uint32_t prefix = 0, mask = 0;  // the bits of the k-th largest fixed so far
  auto remaining = static_cast<uint32_t>(s.k);  // how many of the candidates matching them are kept
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = lane; b < kBins; b += 32) hist[b] = 0;
    __syncwarp();
    for (int key = lane; key < n; key += 32) {
      const uint32_t u = keys[key];
      if ((u & mask) == prefix) atomicAdd(&hist[(u >> shift) & 0xFFu], 1u);
    }
    __syncwarp();
    uint32_t count[8], local = 0;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      count[j] = hist[kBins - 1 - (lane * 8 + j)];
      local += count[j];
    }
    uint32_t inclusive = local;  // candidates in the bins down to this lane's lowest
#pragma unroll
    for (int d = 1; d < 32; d *= 2) {
      const uint32_t y = __shfl_up_sync(kFull, inclusive, d);
      if (lane >= d) inclusive += y;
    }
    const uint32_t above_lane = inclusive - local;
    const int owner = __ffs(__ballot_sync(kFull, above_lane < remaining && remaining <= inclusive)) - 1;
    uint32_t digit = 0, above = 0;
    if (lane == owner) {
      uint32_t acc = above_lane;
      for (int j = 0; j < 8; ++j) {
        if (acc + count[j] >= remaining) {
          digit = static_cast<uint32_t>(kBins - 1 - (lane * 8 + j));
          above = acc;
          break;
        }
        acc += count[j];
      }
    }
    digit = __shfl_sync(kFull, digit, owner);
    above = __shfl_sync(kFull, above, owner);
    prefix |= digit << shift;
    mask |= 0xFFu << shift;
    remaining -= above;
    __syncwarp();  // every lane has read the histogram before the next pass clears it
  }

  // `prefix` is the k-th largest; the keys above it and `remaining` of those equal to it are kept.
  int64_t* out = index + row * s.k;
  const uint32_t greater = static_cast<uint32_t>(s.k) - remaining;
  uint32_t taken_greater = 0, taken_equal = 0;
  const unsigned lower = (1u << lane) - 1u;
  for (int base = 0; base < n && (taken_greater < greater || taken_equal < remaining); base += 32) {
    const int key = base + lane;
    const uint32_t u = key < n ? keys[key] : 0u;
    const bool gt = key < n && u > prefix;
    const bool eq = key < n && u == prefix;
    const unsigned ballot_gt = __ballot_sync(kFull, gt), ballot_eq = __ballot_sync(kFull, eq);
    if (gt) out[taken_greater + __popc(ballot_gt & lower)] = key;
    if (eq) {
      const uint32_t at = taken_equal + __popc(ballot_eq & lower);
      if (at < remaining) out[greater + at] = key;
    }
    taken_greater += __popc(ballot_gt);
    taken_equal += __popc(ballot_eq);
  }
}

}  // namespace

int64_t basis_topk_smem_bytes(int64_t keys) { return kWarps * (keys + kBins + 2 * kMaxTerms) * 4; }

void basis_topk(const BasisTopkShape& s, const float* values, const int64_t* slots, const float* basis,
                int64_t* index, cudaStream_t stream) {
  const auto smem = static_cast<int>(basis_topk_smem_bytes(s.keys));
  C10_CUDA_CHECK(cudaFuncSetAttribute(basis_topk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const auto blocks = static_cast<unsigned>((s.rows + kWarps - 1) / kWarps);
  basis_topk_kernel<<<blocks, kWarps * 32, smem, stream>>>(s, values, slots, basis, index);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace sparsescope::cuda
