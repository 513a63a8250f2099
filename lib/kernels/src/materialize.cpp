#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "checks.h"
#include "mask_tensors.h"
#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/block_mask.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope {
namespace {

constexpr const char* kMaterializePrefix = "sparsescope::materialize: ";
constexpr const char* kMaterializeRowsPrefix = "sparsescope::materialize_rows: ";

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

// x [b, h, ...] and y [b', h', ...] with b, b' and h, h' equal or 1: both expanded to the larger.
std::pair<at::Tensor, at::Tensor> broadcast_heads(const at::Tensor& x, const at::Tensor& y) {
  const int64_t batch = std::max(x.size(0), y.size(0)), heads = std::max(x.size(1), y.size(1));
  auto grown = [&](const at::Tensor& t) {
    std::vector<int64_t> sizes = t.sizes().vec();
    sizes[0] = batch;
    sizes[1] = heads;
    return t.expand(sizes);
  };
  return {grown(x), grown(y)};
}

// The entries rows [B|1, H|1, R] of `table` [B|1, H|1, N, W] along dim 2: [B', H', R, W].
at::Tensor gather_rows(const at::Tensor& table, const at::Tensor& rows) {
  auto [t, r] = broadcast_heads(table, rows.unsqueeze(-1));
  return t.gather(2, r.expand({t.size(0), t.size(1), r.size(2), t.size(3)}));
}

// Key lists [B', H', R, K] (mask::kNoKey for none) as keep rows [B', H', R, m]; a key listed
// twice counts once. Padding scatters into an extra last column that is then dropped.
at::Tensor keep_of_lists(const at::Tensor& lists, int64_t m) {
  const at::Tensor columns = lists.masked_fill(lists.lt(0), m);
  auto sizes = lists.sizes().vec();
  sizes.back() = m + 1;
  return at::zeros(sizes, lists.options().dtype(at::kBool)).scatter_(3, columns, true).narrow(3, 0, m);
}

// Rows `rows` [B|1, H|1, R] (int64, in [0, n)) of the keep mask: [B|1, H|1, R, m].
at::Tensor keep_rows(const Pattern& pattern, int64_t n, int64_t m, const at::Tensor& rows) {
  if (const auto* p = std::get_if<Dense>(&pattern)) {
    at::Tensor keep = at::ones({1, 1, rows.size(2), m}, at::TensorOptions(at::kBool).device(rows.device()));
    if (p->causal) keep = detail::causal_keep_rows(rows, m);
    if (p->mask.defined()) {
      const at::Tensor mask_keep = p->mask.scalar_type() == at::kBool
                                       ? p->mask
                                       : p->mask.ne(-std::numeric_limits<double>::infinity());
      keep = keep.logical_and(gather_rows(mask_keep.expand({-1, -1, n, m}), rows));
    }
    return keep;
  }
  if (const auto* p = std::get_if<BlockSparse>(&pattern)) {
    const at::Tensor blocks = to_block_mask(*p, (m + p->block_k - 1) / p->block_k);  // [B|1, H|1, nq, nk]
    return gather_rows(blocks, at::floor_divide(rows, p->block_q))
        .index_select(3, detail::token_blocks(m, p->block_k, blocks.device()));
  }
  if (const auto* p = std::get_if<TopK>(&pattern)) return keep_of_lists(gather_rows(p->index, rows), m);
  if (const auto* p = std::get_if<Neighborhood>(&pattern)) return detail::neighborhood_keep_rows(*p, rows);
  const auto& p = std::get<Permuted>(pattern);
  // Query i sees key j where the inner problem's position of i sees that of j.
  auto [inverse, r] = broadcast_heads(p.inverse, rows);
  const at::Tensor inner = keep_rows(*p.inner, n, m, inverse.gather(2, r));  // [B', H', R, m] at inner key positions
  const at::Tensor inverse_kv = p.kv_perm.defined() ? invert(p.kv_perm) : p.inverse;
  auto [keep, kv] = broadcast_heads(inner, inverse_kv.unsqueeze(2));
  return keep.gather(3, kv.expand(keep.sizes()));
}

}  // namespace

at::Tensor materialize(const Pattern& pattern, int64_t n, int64_t m) {
  detail::check_pattern(kMaterializePrefix, pattern, n, m);
  return keep_rows(pattern, n, m, at::arange(n, at::TensorOptions(at::kLong).device(device_of(pattern))).view({1, 1, n}));
}

at::Tensor materialize_rows(const Pattern& pattern, int64_t n, int64_t m, const at::Tensor& rows) {
  detail::check_pattern(kMaterializeRowsPrefix, pattern, n, m);
  detail::check_defined(kMaterializeRowsPrefix, "rows", rows);
  SPARSESCOPE_CHECK(rows.scalar_type() == at::kLong && (rows.dim() == 1 || rows.dim() == 3), kMaterializeRowsPrefix,
                    "expected `rows` int64 [R] or [B|1, H|1, R], got ", rows.scalar_type(), " tensor ",
                    detail::shape_string(rows.sizes()));
  const at::Tensor r = (rows.dim() == 1 ? rows.view({1, 1, rows.size(0)}) : rows).to(device_of(pattern));
  if (r.device().is_cpu() && r.numel() > 0) {
    SPARSESCOPE_CHECK(r.min().item<int64_t>() >= 0 && r.max().item<int64_t>() < n, kMaterializeRowsPrefix,
                      "`rows` holds queries outside [0, ", n, ")");
  }
  return keep_rows(pattern, n, m, r);
}

}  // namespace sparsescope
