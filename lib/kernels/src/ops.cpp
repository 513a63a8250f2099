// torch.ops.sparsescope.*: the patterns (and DLGSANet's dynamic convolution) as torch ops, for Python users
// (torch.ops.load_library("libsparsescope_kernels.so")). They are CompositeImplicitAutograd, as
// SDPA is: each calls attend(), whose reference backend is made of differentiable ATen ops and
// whose fused CUDA backends record their own autograd Function (cuda_backend.cpp), so autograd
// sees through every op on every device without a separate CUDA or Autograd registration.
// The registration is a static initializer of this file: it runs when the shared library loads.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <vector>

#include "backend.h"
#include "sparsescope/kernels/basis_topk.h"
#include "sparsescope/kernels/block_mask.h"
#include "sparsescope/kernels/dynamic_conv.h"

namespace sparsescope {
namespace {

using Result = std::tuple<at::Tensor, at::Tensor>;

Result to_tuple(const AttendResult& r) { return {r.out, r.lse}; }

at::Tensor or_undefined(const std::optional<at::Tensor>& t) { return t ? *t : at::Tensor(); }

Result dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal,
                       std::optional<double> scale, const std::optional<at::Tensor>& mask) {
  return to_tuple(detail::attend_impl("sparsescope::dense_attention: ", q, k, v,
                                      Dense{causal, scale, or_undefined(mask)}, nullptr));
}

Result block_sparse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& kv_count, const at::Tensor& kv_index,
                              int64_t block_q, int64_t block_k,
                              const std::optional<at::Tensor>& full_kv_count,
                              const std::optional<at::Tensor>& full_kv_index,
                              std::optional<double> scale) {
  const BlockSparse pattern{block_q, block_k, kv_count, kv_index, or_undefined(full_kv_count),
                            or_undefined(full_kv_index), scale};
  return to_tuple(
      detail::attend_impl("sparsescope::block_sparse_attention: ", q, k, v, pattern, nullptr));
}

Result topk_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                      const at::Tensor& index, std::optional<double> scale) {
  return to_tuple(
      detail::attend_impl("sparsescope::topk_attention: ", q, k, v, TopK{index, scale}, nullptr));
}

Result neighborhood_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              at::IntArrayRef grid, at::IntArrayRef kernel,
                              at::IntArrayRef dilation, c10::List<bool> causal,
                              std::optional<double> scale) {
  const Neighborhood pattern{grid.vec(), kernel.vec(), dilation.vec(), causal.vec(), scale};
  return to_tuple(
      detail::attend_impl("sparsescope::neighborhood_attention: ", q, k, v, pattern, nullptr));
}

Result permuted_block_sparse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       const at::Tensor& perm, const at::Tensor& inverse,
                                       const at::Tensor& kv_count, const at::Tensor& kv_index,
                                       int64_t block_q, int64_t block_k,
                                       const std::optional<at::Tensor>& full_kv_count,
                                       const std::optional<at::Tensor>& full_kv_index,
                                       const std::optional<at::Tensor>& kv_perm, std::optional<double> scale) {
  const BlockSparse inner{block_q, block_k, kv_count, kv_index, or_undefined(full_kv_count),
                          or_undefined(full_kv_index), scale};
  return to_tuple(detail::attend_impl("sparsescope::permuted_block_sparse_attention: ", q, k, v,
                                      permuted(perm, inverse, inner, or_undefined(kv_perm)), nullptr));
}

at::Tensor to_block_mask_op(const at::Tensor& kv_count, const at::Tensor& kv_index,
                            int64_t num_k_blocks, const std::optional<at::Tensor>& full_kv_count,
                            const std::optional<at::Tensor>& full_kv_index) {
  // Block sizes do not change which blocks are listed.
  const BlockSparse pattern{1, 1, kv_count, kv_index, or_undefined(full_kv_count),
                            or_undefined(full_kv_index), std::nullopt};
  return to_block_mask(pattern, num_k_blocks);
}

Result from_block_mask_op(const at::Tensor& blocks) {
  const BlockSparse pattern = from_block_mask(blocks, 1, 1);
  return {pattern.kv_count, pattern.kv_index};
}

}  // namespace
}  // namespace sparsescope

TORCH_LIBRARY(sparsescope, m) {
  m.def("dense_attention(Tensor q, Tensor k, Tensor v, bool causal=False, float? scale=None, "
        "Tensor? mask=None) -> (Tensor out, Tensor lse)");
  m.def("block_sparse_attention(Tensor q, Tensor k, Tensor v, Tensor kv_count, Tensor kv_index, "
        "int block_q, int block_k, Tensor? full_kv_count=None, Tensor? full_kv_index=None, "
        "float? scale=None) -> (Tensor out, Tensor lse)");
  m.def("topk_attention(Tensor q, Tensor k, Tensor v, Tensor index, float? scale=None) "
        "-> (Tensor out, Tensor lse)");
  m.def("neighborhood_attention(Tensor q, Tensor k, Tensor v, int[] grid, int[] kernel, "
        "int[] dilation=[], bool[] causal=[], float? scale=None) -> (Tensor out, Tensor lse)");
  m.def("permuted_block_sparse_attention(Tensor q, Tensor k, Tensor v, Tensor perm, Tensor inverse, "
        "Tensor kv_count, Tensor kv_index, int block_q, int block_k, Tensor? full_kv_count=None, "
        "Tensor? full_kv_index=None, Tensor? kv_perm=None, float? scale=None) -> (Tensor out, Tensor lse)");
  m.def("to_block_mask(Tensor kv_count, Tensor kv_index, int num_k_blocks, "
        "Tensor? full_kv_count=None, Tensor? full_kv_index=None) -> Tensor");
  m.def("from_block_mask(Tensor blocks) -> (Tensor kv_count, Tensor kv_index)");
  m.def("dynamic_depthwise_conv(Tensor x, Tensor weight) -> Tensor");
  m.def("basis_topk(Tensor values, Tensor slots, Tensor basis, int k) -> Tensor");
}

TORCH_LIBRARY_IMPL(sparsescope, CompositeImplicitAutograd, m) {
  m.impl("dense_attention", sparsescope::dense_attention);
  m.impl("block_sparse_attention", sparsescope::block_sparse_attention);
  m.impl("topk_attention", sparsescope::topk_attention);
  m.impl("neighborhood_attention", sparsescope::neighborhood_attention);
  m.impl("permuted_block_sparse_attention", sparsescope::permuted_block_sparse_attention);
  m.impl("to_block_mask", sparsescope::to_block_mask_op);
  m.impl("from_block_mask", sparsescope::from_block_mask_op);
  m.impl("dynamic_depthwise_conv", sparsescope::dynamic_depthwise_conv);
  m.impl("basis_topk", sparsescope::basis_topk);
}
