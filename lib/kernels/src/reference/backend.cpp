#include <ATen/ATen.h>

#include <variant>

#include "reference.h"
#include "sparsescope/kernels/attend.h"

namespace sparsescope::reference {

bool can_use(const detail::AttendParams& params, std::string* why_not) {
  if (std::holds_alternative<Permuted>(params.pattern)) {
    if (why_not) *why_not = "Permuted is lowered onto its inner pattern first";
    return false;
  }
  return true;
}

AttendResult run(const detail::AttendParams& params) {
  const at::ScalarType input = params.q.scalar_type();
  const at::ScalarType work = working_dtype(input);
  const at::Tensor q = params.q.to(work);
  const int64_t heads = params.q.size(1);  // grouped-query attention: K/V heads repeated
  const at::Tensor k = expand_kv_heads(params.k.to(work), heads);
  const at::Tensor v = expand_kv_heads(params.v.to(work), heads);
  const double scale = params.scale;
  const Pattern& pattern = params.pattern;
  AttendResult r;
  if (const auto* p = std::get_if<Dense>(&pattern)) {
    r = dense(q, k, v, *p, scale);
  } else if (const auto* p = std::get_if<BlockSparse>(&pattern)) {
    r = block_sparse(q, k, v, *p, scale);
  } else if (const auto* p = std::get_if<TopK>(&pattern)) {
    r = topk(q, k, v, *p, scale);
  } else if (const auto* p = std::get_if<Neighborhood>(&pattern)) {
    r = neighborhood(q, k, v, *p, scale);
  } else {
    TORCH_INTERNAL_ASSERT(false, "Permuted reached the reference backend, whose can_use refuses it");
  }
  return {r.out.to(input), r.lse};
}

}  // namespace sparsescope::reference
