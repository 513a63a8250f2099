// The dynamic depthwise convolution (dynamic_conv.h): the reference in ATen, and on CUDA the fused
// kernels of src/cuda/dynamic_conv/ with a fused backward (an autograd Function).
#include "sparsescope/kernels/dynamic_conv.h"

#include <ATen/ATen.h>

#include "sparsescope/kernels/error.h"

#if defined(SPARSESCOPE_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <torch/csrc/autograd/custom_function.h>

#include "cuda/dynamic_conv/dynamic_conv.h"
#include "cuda_backend.h"
#endif

namespace sparsescope {

namespace {

void check(const at::Tensor& x, const at::Tensor& weight) {
  SPARSESCOPE_CHECK(x.defined() && weight.defined() && x.dim() == 4 && weight.dim() == 6, "dynamic_depthwise_conv: ",
                    "expected x [B, C, H, W] and weight [B, G, k, k, H, W]");
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), G = weight.size(1), k = weight.size(2);
  SPARSESCOPE_CHECK(weight.size(0) == B && G > 0 && C % G == 0 && k % 2 == 1 && weight.size(3) == k &&
                        weight.size(4) == H && weight.size(5) == W,
                    "dynamic_depthwise_conv: weight ", weight.sizes(), " does not fit x ", x.sizes(),
                    " (expected [B, G, k, k, H, W] with G dividing C and k odd)");
  SPARSESCOPE_CHECK(x.scalar_type() == weight.scalar_type() && x.device() == weight.device(),
                    "dynamic_depthwise_conv: x and weight differ in dtype or device (", x.scalar_type(), " on ",
                    x.device(), ", ", weight.scalar_type(), " on ", weight.device(), ")");
}

}  // namespace

at::Tensor dynamic_depthwise_conv_reference(const at::Tensor& x, const at::Tensor& weight) {
  check(x, weight);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t G = weight.size(1), k = weight.size(2), pad = k / 2;
  const at::Tensor padded = at::constant_pad_nd(x, {pad, pad, pad, pad}).view({B, G, C / G, H + 2 * pad, W + 2 * pad});
  at::Tensor out = at::zeros({B, G, C / G, H, W}, x.options());
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      out = out + padded.narrow(3, i, H).narrow(4, j, W) * weight.select(2, i).select(2, j).unsqueeze(2);
    }
  }
  return out.view({B, C, H, W});
}

#if defined(SPARSESCOPE_WITH_CUDA)
namespace {

cuda::DynamicConvShape shape_of(const at::Tensor& x, const at::Tensor& weight) {
  return {x.size(0), x.size(1), weight.size(1), x.size(2), x.size(3), weight.size(2)};
}

// Calls f(T{}) with T the CUDA type of `dtype`.
template <typename F>
void dispatch(at::ScalarType dtype, F&& f) {
  switch (dtype) {
    case at::kFloat: return f(float{});
    case at::kHalf: return f(__half{});
    case at::kBFloat16: return f(__nv_bfloat16{});
    default: SPARSESCOPE_FAIL("dynamic_depthwise_conv: no fused kernel for ", dtype);
  }
}

template <typename T>
T* ptr(const at::Tensor& t) {
  return reinterpret_cast<T*>(t.data_ptr());
}

at::Tensor fused_forward(const at::Tensor& x, const at::Tensor& weight) {
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty_like(x);
  dispatch(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    cuda::dynamic_conv_fwd<T>(shape_of(x, weight), ptr<T>(x), ptr<T>(weight), ptr<T>(out),
                              at::cuda::getCurrentCUDAStream());
  });
  return out;
}

struct FusedDynamicConv : torch::autograd::Function<FusedDynamicConv> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight) {
    ctx->save_for_backward({x, weight});
    return fused_forward(x, weight);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1];
    const at::Tensor grad_out = grads[0].contiguous().to(x.scalar_type());
    const c10::cuda::CUDAGuard guard(x.device());
    const auto stream = at::cuda::getCurrentCUDAStream();
    at::Tensor grad_x, grad_weight;
    dispatch(x.scalar_type(), [&](auto tag) {
      using T = decltype(tag);
      if (ctx->needs_input_grad(0)) {
        grad_x = at::empty_like(x);
        cuda::dynamic_conv_grad_input<T>(shape_of(x, weight), ptr<T>(grad_out), ptr<T>(weight), ptr<T>(grad_x), stream);
      }
      if (ctx->needs_input_grad(1)) {
        grad_weight = at::empty_like(weight);
        cuda::dynamic_conv_grad_weight<T>(shape_of(x, weight), ptr<T>(grad_out), ptr<T>(x), ptr<T>(grad_weight), stream);
      }
    });
    return {grad_x, grad_weight};
  }
};

bool fused(const at::Tensor& x, const at::Tensor& weight) {
  const auto t = x.scalar_type();
  return x.is_cuda() && (t == at::kFloat || t == at::kHalf || t == at::kBFloat16) &&
         cuda::dynamic_conv_fits(shape_of(x, weight)) && cuda_backend::arch_of(x.device().index()) > 0;
}

}  // namespace
#endif

at::Tensor dynamic_depthwise_conv(const at::Tensor& x, const at::Tensor& weight) {
  check(x, weight);
#if defined(SPARSESCOPE_WITH_CUDA)
  if (fused(x, weight)) {
    const at::Tensor xc = x.contiguous(), wc = weight.contiguous();
    if (at::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad())) {
      return FusedDynamicConv::apply(xc, wc);
    }
    return fused_forward(xc, wc);
  }
#endif
  return dynamic_depthwise_conv_reference(x, weight);
}

}  // namespace sparsescope
