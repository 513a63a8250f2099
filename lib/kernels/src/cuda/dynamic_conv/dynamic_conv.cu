// The fused dynamic depthwise convolution (dynamic_conv.h). A block owns a 32 x 8 pixel tile of one
// (batch, group) and a thread one pixel of it: the thread holds that pixel's k^2 taps in registers,
// read from global memory once (every channel of the group reuses them), and the block walks the
// group's channels, up to 8 at a time, through shared-memory copies of their tiles and halos. Forward,
// gradient of the input (the taps mirrored: each thread gathers the taps of the output pixels that
// read its pixel) and gradient of the taps (k^2 accumulators a thread, summed over the group's
// channels): float accumulation, no atomics, deterministic. k is a template parameter so the tap
// loops unroll into registers.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "dynamic_conv.h"

namespace sparsescope::cuda {
namespace {

constexpr int kTileW = 32, kTileH = 8, kThreads = kTileW * kTileH;

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Where a block and its thread are: the (batch, group) plane, the tile's corner and the pixel.
struct Place {
  int b, g, h0, w0, h, w;
  bool inside;
};

__device__ __forceinline__ Place place_of(const DynamicConvShape& s, int bg) {
  Place p;
  p.b = bg / s.groups;
  p.g = bg % s.groups;
  p.h0 = blockIdx.y * kTileH;
  p.w0 = blockIdx.x * kTileW;
  p.h = p.h0 + threadIdx.y;
  p.w = p.w0 + threadIdx.x;
  p.inside = p.h < s.height && p.w < s.width;
  return p;
}

// Channels whose tiles a block stages at once: all their loads are in flight before the first store.
constexpr int kChunk = 8;

template <int R>
using Tiles = float[kChunk][kTileH + 2 * R][kTileW + 2 * R];

// tiles[n][a][c] = base[n * plane + (h0 - R + a) * W + w0 - R + c] for the first `count` channels,
// zero outside the image. Synchronises before writing (the previous chunk's reads) and after.
template <typename T, int R>
__device__ __forceinline__ void load_tiles(const DynamicConvShape& s, const Place& p, const T* __restrict__ base,
                                           int64_t plane, int count, Tiles<R>& tiles) {
  constexpr int SW = kTileW + 2 * R, SH = kTileH + 2 * R, kPer = (SH * SW + kThreads - 1) / kThreads;
  const int tid = threadIdx.y * kTileW + threadIdx.x;
  int offset[kPer];
  bool valid[kPer];
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int i = tid + e * kThreads, y = p.h0 - R + i / SW, x = p.w0 - R + i % SW;
    valid[e] = i < SH * SW && y >= 0 && y < s.height && x >= 0 && x < s.width;
    offset[e] = y * int(s.width) + x;
  }
  float v[kChunk][kPer];
#pragma unroll
  for (int n = 0; n < kChunk; ++n) {
#pragma unroll
    for (int e = 0; e < kPer; ++e) v[n][e] = n < count && valid[e] ? to_float(base[n * plane + offset[e]]) : 0.f;
  }
  __syncthreads();
#pragma unroll
  for (int n = 0; n < kChunk; ++n) {
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int i = tid + e * kThreads;
      if (n < count && i < SH * SW) tiles[n][i / SW][i % SW] = v[n][e];
    }
  }
  __syncthreads();
}

// The forward, out[c, h, w] = sum_{i, j} weight[g, i, j, h, w] src[c, h + i - R, w + j - R], and
// (kTransposed) the gradient of the input, whose taps are those of the output pixels that read this
// one, mirrored: grad_x[c, h, w] = sum_{i, j} weight[g, i, j, h + R - i, w + R - j]
// grad_out[c, h + R - i, w + R - j]. Both sum a pixel's registered taps against a tile.
template <typename T, int K, bool kTransposed>
__global__ void __launch_bounds__(kThreads, K <= 7 ? 2 : 1)
    conv_kernel(DynamicConvShape s, const T* __restrict__ src, const T* __restrict__ weight, T* __restrict__ dst) {
  constexpr int R = K / 2;
  __shared__ Tiles<R> tiles;
  const int64_t plane = int64_t(s.height) * s.width;
  const int per_group = s.channels / s.groups;
  for (int bg = blockIdx.z; bg < s.batch * s.groups; bg += gridDim.z) {
    const Place p = place_of(s, bg);
    const int at = p.h * s.width + p.w;
    float taps[K * K];
    const T* wp = weight + bg * (K * K) * plane;
#pragma unroll
    for (int i = 0; i < K; ++i) {
#pragma unroll
      for (int j = 0; j < K; ++j) {
        if (kTransposed) {
          const int ho = p.h + R - i, wo = p.w + R - j;
          const bool read = p.inside && ho >= 0 && ho < s.height && wo >= 0 && wo < s.width;
          taps[(K - 1 - i) * K + K - 1 - j] = read ? to_float(wp[(i * K + j) * plane + ho * s.width + wo]) : 0.f;
        } else {
          taps[i * K + j] = p.inside ? to_float(wp[(i * K + j) * plane + at]) : 0.f;
        }
      }
    }
    for (int c0 = 0; c0 < per_group; c0 += kChunk) {
      const int count = min(kChunk, per_group - c0);
      const int64_t first = (int64_t(p.b) * s.channels + p.g * per_group + c0) * plane;
      load_tiles<T, R>(s, p, src + first, plane, count, tiles);
      for (int n = 0; n < count; ++n) {
        float acc = 0.f;
#pragma unroll
        for (int i = 0; i < K; ++i) {
#pragma unroll
          for (int j = 0; j < K; ++j) acc += taps[i * K + j] * tiles[n][threadIdx.y + i][threadIdx.x + j];
        }
        if (p.inside) dst[first + n * plane + at] = from_float<T>(acc);
      }
    }
  }
}

// grad_weight[g, i, j, h, w] = sum_{c in g} grad_out[c, h, w] x[c, h + i - R, w + j - R]
template <typename T, int K>
__global__ void __launch_bounds__(kThreads, K <= 7 ? 2 : 1)
    grad_weight_kernel(DynamicConvShape s, const T* __restrict__ grad_out, const T* __restrict__ x,
                       T* __restrict__ grad_weight) {
  constexpr int R = K / 2;
  __shared__ Tiles<R> tiles;
  const int64_t plane = int64_t(s.height) * s.width;
  const int per_group = s.channels / s.groups;
  for (int bg = blockIdx.z; bg < s.batch * s.groups; bg += gridDim.z) {
    const Place p = place_of(s, bg);
    const int at = p.h * s.width + p.w;
    float acc[K * K] = {};
    for (int c0 = 0; c0 < per_group; c0 += kChunk) {
      const int count = min(kChunk, per_group - c0);
      const int64_t first = (int64_t(p.b) * s.channels + p.g * per_group + c0) * plane;
      float go[kChunk];
#pragma unroll
      for (int n = 0; n < kChunk; ++n) go[n] = p.inside && n < count ? to_float(grad_out[first + n * plane + at]) : 0.f;
      load_tiles<T, R>(s, p, x + first, plane, count, tiles);
#pragma unroll
      for (int n = 0; n < kChunk; ++n) {  // unrolled: go stays in registers
        if (n >= count) break;
#pragma unroll
        for (int i = 0; i < K; ++i) {
#pragma unroll
          for (int j = 0; j < K; ++j) acc[i * K + j] += go[n] * tiles[n][threadIdx.y + i][threadIdx.x + j];
        }
      }
    }
    if (p.inside) {
      T* gp = grad_weight + bg * (K * K) * plane + at;
#pragma unroll
      for (int t = 0; t < K * K; ++t) gp[t * plane] = from_float<T>(acc[t]);
    }
  }
}

dim3 grid_of(const DynamicConvShape& s) {
  const int64_t planes = s.batch * s.groups;  // beyond 65535 the blocks stride over them
  return dim3(unsigned((s.width + kTileW - 1) / kTileW), unsigned((s.height + kTileH - 1) / kTileH),
              unsigned(planes < 65535 ? planes : 65535));
}

// Calls f(std::integral_constant<int, K>{}) for the supported kernel sizes (dynamic_conv_fits).
template <typename F>
void with_kernel_size(int64_t k, F&& f) {
  switch (k) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 7: return f(std::integral_constant<int, 7>{});
    case 9: return f(std::integral_constant<int, 9>{});
    default: return f(std::integral_constant<int, 11>{});  // the one size left that dynamic_conv_fits admits
  }
}

}  // namespace

bool dynamic_conv_fits(const DynamicConvShape& s) {
  return s.kernel % 2 == 1 && s.kernel <= 11 && s.height * s.width < (int64_t(1) << 31) &&
         s.height <= int64_t(65535) * kTileH && s.batch * s.channels < (int64_t(1) << 31);
}

template <typename T>
void dynamic_conv_fwd(const DynamicConvShape& s, const T* x, const T* weight, T* out, cudaStream_t stream) {
  if (s.batch * s.channels * s.height * s.width == 0) return;
  with_kernel_size(s.kernel, [&](auto k) {
    conv_kernel<T, decltype(k)::value, false><<<grid_of(s), dim3(kTileW, kTileH), 0, stream>>>(s, x, weight, out);
  });
}

template <typename T>
void dynamic_conv_grad_input(const DynamicConvShape& s, const T* grad_out, const T* weight, T* grad_x, cudaStream_t stream) {
  if (s.batch * s.channels * s.height * s.width == 0) return;
  with_kernel_size(s.kernel, [&](auto k) {
    conv_kernel<T, decltype(k)::value, true><<<grid_of(s), dim3(kTileW, kTileH), 0, stream>>>(s, grad_out, weight,
                                                                                           grad_x);
  });
}

template <typename T>
void dynamic_conv_grad_weight(const DynamicConvShape& s, const T* grad_out, const T* x, T* grad_weight, cudaStream_t stream) {
  if (s.batch * s.groups * s.height * s.width == 0) return;
  with_kernel_size(s.kernel, [&](auto k) {
    grad_weight_kernel<T, decltype(k)::value><<<grid_of(s), dim3(kTileW, kTileH), 0, stream>>>(s, grad_out, x, grad_weight);
  });
}

#define SPARSESCOPE_DYNAMIC_CONV(T)                                                                            \
  template void dynamic_conv_fwd<T>(const DynamicConvShape&, const T*, const T*, T*, cudaStream_t);           \
  template void dynamic_conv_grad_input<T>(const DynamicConvShape&, const T*, const T*, T*, cudaStream_t);    \
  template void dynamic_conv_grad_weight<T>(const DynamicConvShape&, const T*, const T*, T*, cudaStream_t);
SPARSESCOPE_DYNAMIC_CONV(float)
SPARSESCOPE_DYNAMIC_CONV(__half)
SPARSESCOPE_DYNAMIC_CONV(__nv_bfloat16)
#undef SPARSESCOPE_DYNAMIC_CONV

}  // namespace sparsescope::cuda
