#pragma once
// Host entry points of the fused dynamic depthwise convolution (dynamic_conv.cu): raw pointers of
// contiguous tensors, no ATen. T is float, __half or __nv_bfloat16; sums accumulate in float.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace sparsescope::cuda {

struct DynamicConvShape {
  int64_t batch = 0, channels = 0, groups = 0, height = 0, width = 0, kernel = 0;
};

/// Whether the fused kernels take this shape: odd k up to 11 (the taps live in registers), planes
/// of fewer than 2^31 pixels.
bool dynamic_conv_fits(const DynamicConvShape& s);
/// out = conv(x, weight).
template <typename T>
void dynamic_conv_fwd(const DynamicConvShape& s, const T* x, const T* weight, T* out, cudaStream_t stream);
/// grad_x[b, c, p] = sum_taps grad_out[b, c, p - tap] weight[b, g, tap, p - tap].
template <typename T>
void dynamic_conv_grad_input(const DynamicConvShape& s, const T* grad_out, const T* weight, T* grad_x, cudaStream_t stream);
/// grad_weight[b, g, tap, p] = sum_{c in g} grad_out[b, c, p] x[b, c, p + tap].
template <typename T>
void dynamic_conv_grad_weight(const DynamicConvShape& s, const T* grad_out, const T* x, T* grad_weight, cudaStream_t stream);

}  // namespace sparsescope::cuda
