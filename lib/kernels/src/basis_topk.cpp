// The basis top-k selection (basis_topk.h): the reference in ATen, and on CUDA the fused kernel of
// src/cuda/basis_topk/.
#include "sparsescope/kernels/basis_topk.h"

#include <ATen/ATen.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <algorithm>
#include <limits>

#include "sparsescope/kernels/error.h"

#if defined(SPARSESCOPE_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda/basis_topk/basis_topk.h"
#endif

namespace sparsescope {

namespace {

void check(const at::Tensor& values, const at::Tensor& slots, const at::Tensor& basis, int64_t k) {
  SPARSESCOPE_CHECK(values.defined() && slots.defined() && basis.defined() && values.dim() == 4 && basis.dim() == 2 &&
                        slots.sizes() == values.sizes(),
                    "basis_topk: expected values and slots [B, H, R, T] and basis [S, N], got ",
                    values.defined() ? values.sizes() : at::IntArrayRef{}, ", ",
                    slots.defined() ? slots.sizes() : at::IntArrayRef{}, " and ",
                    basis.defined() ? basis.sizes() : at::IntArrayRef{});
  SPARSESCOPE_CHECK(at::isFloatingType(values.scalar_type()) && at::isFloatingType(basis.scalar_type()) &&
                        slots.scalar_type() == at::kLong,
                    "basis_topk: values and basis must be floating and slots int64, got ", values.scalar_type(), ", ",
                    basis.scalar_type(), " and ", slots.scalar_type());
  SPARSESCOPE_CHECK(values.device() == slots.device() && values.device() == basis.device(),
                    "basis_topk: values, slots and basis on different devices (", values.device(), ", ", slots.device(),
                    ", ", basis.device(), ")");
  SPARSESCOPE_CHECK(k >= 1 && basis.size(0) >= 1 && basis.size(1) >= 1 && values.size(3) >= 1,
                    "basis_topk: k ", k, ", basis ", basis.sizes(), " and T = ", values.size(3), " must be positive");
  // Slot values are checked where it costs no device synchronisation (the CUDA kernel clamps).
  if (slots.is_cpu() && slots.numel() > 0) {
    SPARSESCOPE_CHECK(slots.min().item<int64_t>() >= 0 && slots.max().item<int64_t>() < basis.size(0),
                      "basis_topk: slots outside [0, ", basis.size(0), ")");
  }
}

}  // namespace

at::Tensor basis_topk_reference(const at::Tensor& values, const at::Tensor& slots, const at::Tensor& basis, int64_t k) {
  check(values, slots, basis, k);
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);  // float32, as documented
  const auto sizes = values.sizes();
  const at::Tensor coef = at::zeros({sizes[0], sizes[1], sizes[2], basis.size(0)}, values.options().dtype(at::kFloat))
                              .scatter_add_(-1, slots, values.to(at::kFloat));
  const at::Tensor scores = at::matmul(coef, basis.to(at::kFloat));
  return std::get<1>(scores.topk(std::min(k, basis.size(1)), -1, /*largest=*/true, /*sorted=*/false));
}

at::Tensor basis_topk(const at::Tensor& values, const at::Tensor& slots, const at::Tensor& basis, int64_t k) {
  check(values, slots, basis, k);
#if defined(SPARSESCOPE_WITH_CUDA)
  const int64_t n = basis.size(1);
  const int64_t t = values.size(3);
  if (values.is_cuda() && t <= cuda::kBasisTopkMaxTerms && n < std::numeric_limits<int32_t>::max()) {
    const c10::cuda::CUDAGuard guard(values.device());
    const int optin = static_cast<int>(at::cuda::getDeviceProperties(values.get_device())->sharedMemPerBlockOptin);
    if (cuda::basis_topk_smem_bytes(n) <= optin) {
      const auto sizes = values.sizes();
      const at::Tensor v = values.to(at::kFloat).contiguous();
      const at::Tensor s = slots.contiguous();
      const at::Tensor b = basis.to(at::kFloat).contiguous();
      const int64_t kept = std::min(k, n);
      at::Tensor index = at::empty({sizes[0], sizes[1], sizes[2], kept}, slots.options());
      if (index.numel() == 0) return index;
      const cuda::BasisTopkShape shape{sizes[0] * sizes[1] * sizes[2], t, basis.size(0), n, kept};
      cuda::basis_topk(shape, v.data_ptr<float>(), s.data_ptr<int64_t>(), b.data_ptr<float>(),
                       index.data_ptr<int64_t>(), at::cuda::getCurrentCUDAStream(values.get_device()).stream());
      return index;
    }
  }
#endif
  return basis_topk_reference(values, slots, basis, k);
}

}  // namespace sparsescope
