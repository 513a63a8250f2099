// Note [recording memory]
// Probabilities are recomputed in steps that each hold at most options.chunk_cells float32 cells
// per temporary: several whole heads at a time while a head fits, else rows of one head, in runs
// that are a multiple of the pool size so that every pooled cell is complete within one step and
// its mean is exact (so a step holds at least pool rows of M keys, whatever the option says). A
// step asks each part for the keys of its queries that fall in the step's rows (materialize_rows),
// so no mask is ever whole beyond a step. Only pooled maps (within the budget) and the selected
// rows leave the device.
//
// Note [site parts]
// A site's effective probabilities are the sum of its Sum parts' softmax weighted by their gates,
// plus one softmax over the union of its Lse parts' keys (the passes merged by log-sum-exp); each
// part is placed at the site's queries and keys first. The union of the parts' masks is the site's
// mask. Recall compares the union with dense attention computed from a part that covers the whole
// site (same queries and keys); without one it is NaN.
#include "site_recording.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace sparsescope::vision::detail {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Planes h0..h1 of a [H|1, ...] tensor; a shared plane is shared by every head.
at::Tensor heads(const at::Tensor& t, int64_t h0, int64_t h1) { return t.size(0) == 1 ? t : t.slice(0, h0, h1); }

bool covers_site(const PartInput& p, int64_t n, int64_t m) {
  return !p.queries.defined() && !p.keys.defined() && p.q.size(1) == n && p.k.size(1) == m;
}

// Pooled outputs of one part, filled step by step.
struct PartRecord {
  at::Tensor probs, mask, gate;  // CPU; mask and gate allocated at their first step (their planes: H or 1)
};

// Copies `x` [h1 - h0 or 1, r, c] (or [.., r]) pooled into heads h0..h1 and cells c0.. of `out`,
// which holds one plane while every step's x is `shared` by the heads, else one per head.
void store_pooled(at::Tensor& out, const at::Tensor& x, bool shared, int64_t pool, int64_t h0, int64_t h1, int64_t c0,
                  int64_t heads_total, at::IntArrayRef cells) {
  std::vector<int64_t> sizes = {heads_total};
  sizes.insert(sizes.end(), cells.begin(), cells.end());
  if (!out.defined()) {
    sizes[0] = shared ? 1 : heads_total;
    out = at::zeros(sizes, at::kFloat);
  } else if (out.size(0) == 1 && !shared && heads_total > 1) {  // planes shared so far, per head from here on
    out = out.expand(sizes).clone();
  }
  const at::Tensor pooled = mean_pool(x.dim() == 2 ? x.unsqueeze(-1) : x, pool);
  if (out.size(0) == 1 && h0 > 0) return;  // a shared plane is written once
  at::Tensor dst = out.size(0) == 1 ? out : out.slice(0, h0, h1);
  dst = dst.slice(1, c0, c0 + pooled.size(1));
  dst.copy_(x.dim() == 2 ? pooled.squeeze(-1) : pooled);
}

}  // namespace

int64_t pool_for(int64_t n, int64_t m, int64_t budget) {
  if (n * m <= budget) return 1;
  int64_t p = std::max<int64_t>(1, static_cast<int64_t>(std::sqrt(static_cast<double>(n) * m / budget)));
  while (ceil_div(n, p) * ceil_div(m, p) > budget) ++p;
  return p;
}

at::Tensor mean_pool(const at::Tensor& x, int64_t pool) {
  if (pool == 1) return x;
  const int64_t planes = x.size(0), n = x.size(1), m = x.size(2);
  const int64_t np = ceil_div(n, pool), mp = ceil_div(m, pool);
  const at::Tensor padded = at::constant_pad_nd(x, {0, mp * pool - m, 0, np * pool - n});
  const at::Tensor sums = padded.view({planes, np, pool, mp, pool}).sum({2, 4});  // [P, np, mp]
  const auto counts = [&](int64_t extent, int64_t cells) {
    return (at::full({cells}, pool, x.options()) - at::relu(at::arange(1, cells + 1, x.options()) * pool - extent));
  };
  return sums / (counts(n, np).unsqueeze(1) * counts(m, mp).unsqueeze(0));
}

SiteTrace record_site(const std::vector<PartInput>& parts, int64_t N, int64_t M, const RecorderOptions& options) {
  const PartInput& first = parts.front();
  const int64_t H = first.q.size(0);
  const int64_t pool = pool_for(N, M, options.budget);
  const int64_t np = ceil_div(N, pool), mp = ceil_div(M, pool);
  const auto dev = first.q.options().dtype(at::kFloat);
  const auto index_options = first.q.options().dtype(at::kLong);
  const bool named = !first.name.empty();

  SiteTrace s;
  s.queries = N;
  s.keys = M;
  s.pool = pool;
  s.probs = at::empty({H, np, mp}, at::kFloat);
  // Full maps already hold every row; selected rows are kept only where the maps are pooled.
  std::vector<int64_t> row_queries;
  if (pool > 1) {
    for (const int64_t r : options.queries) {
      if (r < N && std::find(row_queries.begin(), row_queries.end(), r) == row_queries.end()) row_queries.push_back(r);
    }
  }
  const auto R = static_cast<int64_t>(row_queries.size());
  s.row_queries = at::tensor(row_queries, at::kLong).view({R});
  s.rows = at::zeros({H, R, M}, at::kFloat);

  // Sums over queries, per head, in float64 so that many steps add up without float32 rounding.
  const auto sum_options = first.q.options().dtype(at::kDouble);
  at::Tensor recall_sum = at::zeros({H}, sum_options), entropy_sum = at::zeros({H}, sum_options),
             kept = at::zeros({H}, sum_options);
  const auto dense_part = std::find_if(parts.begin(), parts.end(), [&](const PartInput& p) { return covers_site(p, N, M); });
  const bool compare_dense = options.compare_dense && dense_part != parts.end();
  // The site's queries of each part's queries.
  std::vector<at::Tensor> site_rows;
  for (const PartInput& p : parts) site_rows.push_back(p.queries.defined() ? p.queries : at::arange(p.q.size(1), index_options));
  std::vector<PartRecord> records(named ? parts.size() : 0);

  const int64_t cells = N * M;
  const int64_t head_step = cells <= options.chunk_cells ? std::clamp<int64_t>(options.chunk_cells / cells, 1, H) : 1;
  const int64_t row_step =
      cells <= options.chunk_cells ? N : std::max<int64_t>(pool, options.chunk_cells / M / pool * pool);
  at::Tensor mask;  // the union's pooled planes, allocated at the first step
  for (int64_t h0 = 0; h0 < H; h0 += head_step) {
    const int64_t h1 = std::min(H, h0 + head_step), h = h1 - h0;
    for (int64_t r0 = 0; r0 < N; r0 += row_step) {
      const int64_t r1 = std::min(N, r0 + row_step), r = r1 - r0;
      const int64_t c0 = r0 / pool;
      at::Tensor effective = at::zeros({h, r, M}, dev), keep_union, lse_logits;
      bool union_shared = true;
      at::Tensor dense;  // softmax of the scores over every key, for recall
      std::vector<at::Tensor> part_lse(parts.size());
      // [P, R_part] at the step's rows `local`: [P, r], `fill` elsewhere.
      auto place_rows = [&](const at::Tensor& local, const at::Tensor& x, double fill) {
        return at::full({x.size(0), r}, fill, x.options()).index_copy_(1, local, x);
      };
      // The part's [P, R_part, M_part] at the step's rows and the site's keys: [P, r, M], `fill` elsewhere.
      auto place = [&](const PartInput& p, const at::Tensor& local, const at::Tensor& x, double fill) {
        at::Tensor wide = x;
        if (p.keys.defined()) {
          wide = at::full({x.size(0), x.size(1), M}, fill, x.options()).index_copy_(2, p.keys, x);
        }
        return at::full({x.size(0), r, M}, fill, x.options()).index_copy_(1, local, wide);
      };
      for (size_t i = 0; i < parts.size(); ++i) {
        const PartInput& p = parts[i];
        const at::Tensor in_step = site_rows[i].ge(r0).logical_and(site_rows[i].lt(r1));
        const at::Tensor part_rows = in_step.nonzero().squeeze(1);  // the part's queries in this step
        if (part_rows.numel() == 0) continue;
        const at::Tensor local = site_rows[i].index_select(0, part_rows) - r0;
        const at::Tensor keep_all = p.keep(part_rows);  // [H|1, R_part, M_part]
        const bool keep_shared = keep_all.size(0) == 1;
        union_shared = union_shared && keep_shared;
        const at::Tensor keep = heads(keep_all, h0, h1);
        const at::Tensor scores =
            at::matmul(p.q.slice(0, h0, h1).index_select(1, part_rows).to(dev), p.k.slice(0, h0, h1).to(dev).transpose(1, 2))
                .mul_(p.scale);  // [h, R_part, M_part]
        at::Tensor logits = scores;
        if (p.bias.defined()) logits = scores + heads(p.bias, h0, h1).index_select(1, part_rows).to(dev);
        const at::Tensor masked = logits.masked_fill(keep.logical_not(), kNegInf);
        // A query that sees no key has an all -inf row: NaN from softmax, 0 in attend()'s output.
        const at::Tensor probs = at::softmax(masked, -1).nan_to_num_(0.0);
        const at::Tensor placed = place(p, local, probs, 0.0);
        const at::Tensor keep_placed = place(p, local, keep, 0.0);
        keep_union = keep_union.defined() ? keep_union.logical_or(keep_placed) : keep_placed;
        at::Tensor gate;  // [h|1, r] at the step's rows, 0 where the part has no query
        if (p.lse) {
          lse_logits = lse_logits.defined() ? at::maximum(lse_logits, place(p, local, masked, kNegInf))
                                            : place(p, local, masked, kNegInf);
          part_lse[i] = place_rows(local, at::logsumexp(masked, -1), kNegInf);  // [h, r]
        } else {
          const at::Tensor g = p.gate.defined() ? heads(p.gate, h0, h1).index_select(1, part_rows).to(dev)
                                                : at::ones({1, part_rows.numel()}, dev);
          gate = place_rows(local, g, 0.0);
          effective.add_(placed * gate.unsqueeze(-1));
        }
        if (compare_dense && &p == &*dense_part) {
          // Without a bias and with every key kept, the part's probabilities are the dense ones.
          const bool same = parts.size() == 1 && !p.bias.defined() && !p.gate.defined() && keep.all().item<bool>();
          dense = same ? placed : place(p, local, at::softmax(scores, -1), 0.0);
        }
        if (named) {
          store_pooled(records[i].probs, placed, false, pool, h0, h1, c0, H, {np, mp});
          store_pooled(records[i].mask, keep_placed.to(at::kFloat), keep_shared, pool, h0, h1, c0, H, {np, mp});
          const bool gate_shared = !p.gate.defined() || p.gate.size(0) == 1;
          if (!p.lse) store_pooled(records[i].gate, gate, gate_shared, pool, h0, h1, c0, H, {np});
        }
      }
      if (lse_logits.defined()) {
        effective.add_(at::softmax(lse_logits, -1).nan_to_num_(0.0));
        const at::Tensor lse_site = at::logsumexp(lse_logits, -1);  // [h, r]
        for (size_t i = 0; i < parts.size(); ++i) {
          if (!parts[i].lse || !named) continue;
          const at::Tensor gate = part_lse[i].defined() ? (part_lse[i] - lse_site).exp_().nan_to_num_(0.0)
                                                        : at::zeros({h, r}, dev);
          store_pooled(records[i].gate, gate, false, pool, h0, h1, c0, H, {np});
        }
      }
      if (!keep_union.defined()) keep_union = at::zeros({1, r, M}, dev.dtype(at::kBool));
      if (compare_dense) recall_sum.slice(0, h0, h1).add_(dense.mul(keep_union).sum({1, 2}, false, at::kDouble));
      entropy_sum.slice(0, h0, h1).sub_(at::special_xlogy(effective, effective).sum({1, 2}, false, at::kDouble));
      kept.slice(0, h0, h1).add_(keep_union.sum({1, 2}, false, at::kDouble));

      s.probs.slice(0, h0, h1).slice(1, c0, c0 + ceil_div(r, pool)).copy_(mean_pool(effective, pool));
      store_pooled(mask, keep_union.to(at::kFloat), union_shared, pool, h0, h1, c0, H, {np, mp});
      for (int64_t i = 0; i < R; ++i) {
        if (row_queries[i] >= r0 && row_queries[i] < r1)
          s.rows.slice(0, h0, h1).select(1, i).copy_(effective.select(1, row_queries[i] - r0));
      }
    }
  }
  s.mask = mask;
  const at::Tensor recall =
      compare_dense ? recall_sum / N : at::full({H}, std::numeric_limits<double>::quiet_NaN(), sum_options);
  s.stats = at::stack({recall, kept / static_cast<double>(cells), entropy_sum / N}, 1).to(at::kFloat).cpu();
  for (size_t i = 0; i < records.size(); ++i) {
    PartRecord& rec = records[i];
    // A part with no query in the site still has (empty) maps.
    if (!rec.probs.defined()) rec.probs = at::zeros({H, np, mp});
    if (!rec.mask.defined()) rec.mask = at::zeros({1, np, mp});
    if (!rec.gate.defined()) rec.gate = at::zeros({1, np});
    s.parts.push_back({parts[i].name, parts[i].lse ? "lse" : "sum", rec.probs, rec.mask, rec.gate});
  }
  return s;
}

SiteTrace record_map(const at::Tensor& values, const RecorderOptions& options) {
  const int64_t H = values.size(0), N = values.size(1), M = values.size(2);
  const at::Tensor v = values.to(at::kFloat);
  SiteTrace s;
  s.queries = N;
  s.keys = M;
  s.pool = pool_for(N, M, options.budget);
  s.probs = mean_pool(v, s.pool).cpu();
  const at::Tensor nonzero = v.ne(0).to(at::kFloat);
  s.mask = mean_pool(nonzero, s.pool).cpu();
  std::vector<int64_t> row_queries;
  if (s.pool > 1) {
    for (const int64_t r : options.queries) {
      if (r < N && std::find(row_queries.begin(), row_queries.end(), r) == row_queries.end()) row_queries.push_back(r);
    }
  }
  s.row_queries = at::tensor(row_queries, at::kLong).view({static_cast<int64_t>(row_queries.size())});
  s.rows = v.index_select(1, s.row_queries.to(v.device())).cpu();
  const at::Tensor nan = at::full({H}, std::numeric_limits<float>::quiet_NaN());
  s.stats = at::stack({nan, nonzero.mean({1, 2}).cpu(), nan}, 1);
  return s;
}

}  // namespace sparsescope::vision::detail
