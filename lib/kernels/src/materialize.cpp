#include <ATen/ATen.h>

#include <limits>

#include "checks.h"
#include "mask_tensors.h"
#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/block_mask.h"

namespace sparsescope {
namespace {

constexpr const char* kMaterializePrefix = "sparsescope::materialize: ";

at::Device device_of(const Pattern& pattern) {
  if (const auto* p = std::get_if<Dense>(&pattern)) return p->mask.defined() ? p->mask.device() : at::kCPU;
  if (const auto* p = std::get_if<BlockSparse>(&pattern)) return p->kv_count.device();
  if (const auto* p = std::get_if<TopK>(&pattern)) return p->index.device();
  if (const auto* p = std::get_if<Permuted>(&pattern)) return p->perm.device();
  return at::kCPU;
}

// The inverse permutation along the last dim.
at::Tensor invert(const at::Tensor& perm) {
  const at::Tensor positions = at::arange(perm.size(-1), perm.options()).expand_as(perm);
  return at::empty_like(perm).scatter_(-1, perm, positions);
}

at::Tensor keep_mask(const Pattern& pattern, int64_t n, int64_t m) {
  if (const auto* p = std::get_if<Dense>(&pattern)) {
    at::Tensor keep = at::ones({1, 1, n, m}, at::TensorOptions(at::kBool).device(device_of(pattern)));
    if (p->causal) keep = keep.logical_and(detail::causal_keep(n, m, keep.device()));
    if (p->mask.defined())
      keep = keep.logical_and(p->mask.scalar_type() == at::kBool
                                  ? p->mask
                                  : p->mask.ne(-std::numeric_limits<double>::infinity()));
    return keep;
  }
  if (const auto* p = std::get_if<BlockSparse>(&pattern)) {
    const at::Tensor blocks = to_block_mask(*p, (m + p->block_k - 1) / p->block_k);
    return blocks.index_select(2, detail::token_blocks(n, p->block_q, blocks.device()))
        .index_select(3, detail::token_blocks(m, p->block_k, blocks.device()));
  }
  if (const auto* p = std::get_if<TopK>(&pattern)) {
    // Padding scatters into an extra last column that is then dropped.
    const at::Tensor columns = p->index.masked_fill(p->index.lt(0), m);
    auto sizes = p->index.sizes().vec();
    sizes.back() = m + 1;
    return at::zeros(sizes, p->index.options().dtype(at::kBool))
        .scatter_(3, columns, true)
        .narrow(3, 0, m);
  }
  if (const auto* p = std::get_if<Neighborhood>(&pattern)) {
    return detail::neighborhood_keep(*p).view({1, 1, n, m});
  }
  const auto& p = std::get<Permuted>(pattern);
  // Query i sees key j where the inner problem's position of i sees that of j.
  const at::Tensor inner = keep_mask(*p.inner, n, m);
  const at::Tensor inverse_kv = p.kv_perm.defined() ? invert(p.kv_perm) : p.inverse;
  const int64_t batch = std::max({inner.size(0), p.inverse.size(0), inverse_kv.size(0)});
  const int64_t heads = std::max({inner.size(1), p.inverse.size(1), inverse_kv.size(1)});
  return inner.expand({batch, heads, n, m})
      .gather(2, p.inverse.unsqueeze(-1).expand({batch, heads, n, m}))
      .gather(3, inverse_kv.unsqueeze(2).expand({batch, heads, n, m}));
}

}  // namespace

at::Tensor materialize(const Pattern& pattern, int64_t n, int64_t m) {
  detail::check_pattern(kMaterializePrefix, pattern, n, m);
  return keep_mask(pattern, n, m);
}

}  // namespace sparsescope
