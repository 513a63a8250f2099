// The fused dynamic depthwise convolution (dynamic_conv.h): element-wise kernels, one thread per
// output, consecutive threads along the image's width so that x, weight and out are read and
// written coalesced; the k^2 taps in registers with float accumulation. Forward, gradient of the
// input (the taps mirrored) and gradient of the kernels (a sum over the group's channels): no
// atomics, deterministic.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "dynamic_conv.h"

namespace sparsescope::cuda {
namespace {

constexpr int kThreads = 256;

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

template <typename T>
__global__ void fwd_kernel(DynamicConvShape s, const T* __restrict__ x, const T* __restrict__ weight, T* __restrict__ out) {
  const int64_t total = s.batch * s.channels * s.height * s.width;
  const int64_t plane = s.height * s.width, taps = s.kernel * s.kernel, r = s.kernel / 2;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = idx % s.width, h = (idx / s.width) % s.height, bc = idx / plane;
    const int64_t b = bc / s.channels, c = bc % s.channels, g = c / (s.channels / s.groups);
    const T* xp = x + bc * plane;
    const T* wp = weight + (b * s.groups + g) * taps * plane + h * s.width + w;
    float acc = 0.f;
    for (int64_t i = 0; i < s.kernel; ++i) {
      const int64_t hh = h + i - r;
      if (hh < 0 || hh >= s.height) continue;
      for (int64_t j = 0; j < s.kernel; ++j) {
        const int64_t ww = w + j - r;
        if (ww < 0 || ww >= s.width) continue;
        acc += to_float(xp[hh * s.width + ww]) * to_float(wp[(i * s.kernel + j) * plane]);
      }
    }
    out[idx] = from_float<T>(acc);
  }
}

template <typename T>
__global__ void grad_input_kernel(DynamicConvShape s, const T* __restrict__ grad_out, const T* __restrict__ weight,
                                  T* __restrict__ grad_x) {
  const int64_t total = s.batch * s.channels * s.height * s.width;
  const int64_t plane = s.height * s.width, taps = s.kernel * s.kernel, r = s.kernel / 2;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = idx % s.width, h = (idx / s.width) % s.height, bc = idx / plane;
    const int64_t b = bc / s.channels, c = bc % s.channels, g = c / (s.channels / s.groups);
    const T* gp = grad_out + bc * plane;
    const T* wp = weight + (b * s.groups + g) * taps * plane;
    float acc = 0.f;
    for (int64_t i = 0; i < s.kernel; ++i) {
      const int64_t ho = h - i + r;  // the output pixel that reads this one through tap (i, j)
      if (ho < 0 || ho >= s.height) continue;
      for (int64_t j = 0; j < s.kernel; ++j) {
        const int64_t wo = w - j + r;
        if (wo < 0 || wo >= s.width) continue;
        const int64_t p = ho * s.width + wo;
        acc += to_float(gp[p]) * to_float(wp[(i * s.kernel + j) * plane + p]);
      }
    }
    grad_x[idx] = from_float<T>(acc);
  }
}

template <typename T>
__global__ void grad_weight_kernel(DynamicConvShape s, const T* __restrict__ grad_out, const T* __restrict__ x,
                                   T* __restrict__ grad_weight) {
  const int64_t plane = s.height * s.width, taps = s.kernel * s.kernel, r = s.kernel / 2;
  const int64_t per_group = s.channels / s.groups;
  const int64_t total = s.batch * s.groups * taps * plane;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = idx % s.width, h = (idx / s.width) % s.height;
    const int64_t tap = (idx / plane) % taps, bg = idx / (plane * taps);
    const int64_t hh = h + tap / s.kernel - r, ww = w + tap % s.kernel - r;
    float acc = 0.f;
    if (hh >= 0 && hh < s.height && ww >= 0 && ww < s.width) {
      const int64_t b = bg / s.groups, g = bg % s.groups;
      const int64_t first = (b * s.channels + g * per_group) * plane;
      for (int64_t c = 0; c < per_group; ++c) {
        acc += to_float(grad_out[first + c * plane + h * s.width + w]) * to_float(x[first + c * plane + hh * s.width + ww]);
      }
    }
    grad_weight[idx] = from_float<T>(acc);
  }
}

unsigned blocks_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 * 32 ? blocks : 65535 * 32);  // grid-stride beyond
}

}  // namespace

template <typename T>
void dynamic_conv_fwd(const DynamicConvShape& s, const T* x, const T* weight, T* out, cudaStream_t stream) {
  const int64_t total = s.batch * s.channels * s.height * s.width;
  if (total > 0) fwd_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(s, x, weight, out);
}

template <typename T>
void dynamic_conv_grad_input(const DynamicConvShape& s, const T* grad_out, const T* weight, T* grad_x, cudaStream_t stream) {
  const int64_t total = s.batch * s.channels * s.height * s.width;
  if (total > 0) grad_input_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(s, grad_out, weight, grad_x);
}

template <typename T>
void dynamic_conv_grad_weight(const DynamicConvShape& s, const T* grad_out, const T* x, T* grad_weight, cudaStream_t stream) {
  const int64_t total = s.batch * s.groups * s.kernel * s.kernel * s.height * s.width;
  if (total > 0) grad_weight_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(s, grad_out, x, grad_weight);
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
