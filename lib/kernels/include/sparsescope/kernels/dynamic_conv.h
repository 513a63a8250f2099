#pragma once
// Per-pixel depthwise convolution with predicted kernels (DLGSANet's IDynamicDWConv, the CuPy
// kernel of its official code): every pixel of every channel group has its own k x k kernel.
#include <ATen/core/Tensor.h>

namespace sparsescope {

/// out[b, c, h, w] = sum_{i, j < k} weight[b, c / (C / G), i, j, h, w] * x[b, c, h + i - k/2, w + j - k/2]
/// with zero padding. x [B, C, H, W], weight [B, G, k, k, H, W] (odd k; C a multiple of G), the same
/// dtype and device. On CUDA (float32, float16, bfloat16, k <= 11; built with CUDA) fused kernels run the
/// forward and the backward (float accumulation); elsewhere the reference: k^2 shifted products in
/// ATen, which autograd differentiates. Throws sparsescope::Error naming the shapes that do not fit.
at::Tensor dynamic_depthwise_conv(const at::Tensor& x, const at::Tensor& weight);

/// The reference, on any device (what the fused kernels are tested against).
at::Tensor dynamic_depthwise_conv_reference(const at::Tensor& x, const at::Tensor& weight);

}  // namespace sparsescope
