// Note [recording memory]
// Probabilities are recomputed in steps that each hold at most options.chunk_cells float32 cells
// per temporary: several whole heads at a time while a head fits, else rows of one head, in runs
// that are a multiple of the pool size so that every pooled cell is complete within one step and
// its mean is exact (so a step holds at least pool rows of M keys, whatever the option says). Only
// pooled maps (within the budget) and the selected rows leave the device.
#include "site_recording.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace sparsescope::vision::detail {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Rows h0..h1 of a [H|1, ...] tensor; a shared plane is shared by every head.
at::Tensor heads(const at::Tensor& t, int64_t h0, int64_t h1) { return t.size(0) == 1 ? t : t.slice(0, h0, h1); }

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

SiteTrace record_site(const at::Tensor& q, const at::Tensor& k, const at::Tensor& keep, const at::Tensor& bias,
                      double scale, const RecorderOptions& options) {
  const int64_t H = q.size(0), N = q.size(1), M = k.size(1);
  const int64_t pool = pool_for(N, M, options.budget);
  const int64_t np = ceil_div(N, pool), mp = ceil_div(M, pool);
  const bool shared_mask = keep.size(0) == 1;
  const auto cpu = at::TensorOptions(at::kFloat);
  const auto dev = q.options().dtype(at::kFloat);

  SiteTrace s;
  s.queries = N;
  s.keys = M;
  s.pool = pool;
  s.probs = at::empty({H, np, mp}, cpu);
  s.mask = at::empty({shared_mask ? 1 : H, np, mp}, cpu);
  // Full maps already hold every row; selected rows are kept only where the maps are pooled.
  std::vector<int64_t> row_queries;
  if (pool > 1) {
    for (const int64_t r : options.queries) {
      if (r < N && std::find(row_queries.begin(), row_queries.end(), r) == row_queries.end()) row_queries.push_back(r);
    }
  }
  const auto R = static_cast<int64_t>(row_queries.size());
  s.row_queries = at::tensor(row_queries, at::kLong).view({R});
  s.rows = at::zeros({H, R, M}, cpu);

  // Sums over queries, per head, in float64 so that many steps add up without float32 rounding.
  const auto sum_options = q.options().dtype(at::kDouble);
  at::Tensor recall_sum = at::zeros({H}, sum_options), entropy_sum = at::zeros({H}, sum_options),
             kept = at::zeros({H}, sum_options);
  // Without a bias and with every key kept, the pattern's probabilities are the dense ones.
  const bool same_as_dense = !bias.defined() && keep.all().item<bool>();

  const int64_t cells = N * M;
  const int64_t head_step = cells <= options.chunk_cells ? std::clamp<int64_t>(options.chunk_cells / cells, 1, H) : 1;
  const int64_t row_step =
      cells <= options.chunk_cells ? N : std::max<int64_t>(pool, options.chunk_cells / M / pool * pool);
  const at::Tensor kf = k.to(dev);
  for (int64_t h0 = 0; h0 < H; h0 += head_step) {
    const int64_t h1 = std::min(H, h0 + head_step);
    const at::Tensor kt = kf.slice(0, h0, h1).transpose(1, 2);  // [h, D, M]
    for (int64_t r0 = 0; r0 < N; r0 += row_step) {
      const int64_t r1 = std::min(N, r0 + row_step);
      const at::Tensor scores = at::matmul(q.slice(0, h0, h1).slice(1, r0, r1).to(dev), kt).mul_(scale);  // [h, r, M]
      const at::Tensor keep_c = heads(keep, h0, h1).slice(1, r0, r1);                                     // [h|1, r, M]
      at::Tensor logits = scores;
      if (bias.defined()) logits = scores + heads(bias, h0, h1).slice(1, r0, r1).to(dev);
      // A query that sees no key has an all -inf row: NaN from softmax, 0 in attend()'s output.
      const at::Tensor probs =
          at::softmax(logits.masked_fill(keep_c.logical_not(), -std::numeric_limits<float>::infinity()), -1)
              .nan_to_num_(0.0);
      if (options.compare_dense) {
        const at::Tensor dense = same_as_dense ? probs : at::softmax(scores, -1);
        recall_sum.slice(0, h0, h1).add_(dense.mul(keep_c).sum({1, 2}, false, at::kDouble));
      }
      entropy_sum.slice(0, h0, h1).sub_(at::special_xlogy(probs, probs).sum({1, 2}, false, at::kDouble));
      kept.slice(0, h0, h1).add_(keep_c.sum({1, 2}, false, at::kDouble));

      const int64_t c0 = r0 / pool, c1 = ceil_div(r1, pool);
      s.probs.slice(0, h0, h1).slice(1, c0, c1).copy_(mean_pool(probs, pool));
      if (!shared_mask || h0 == 0) {
        s.mask.slice(0, shared_mask ? 0 : h0, shared_mask ? 1 : h1)
            .slice(1, c0, c1)
            .copy_(mean_pool(keep_c.to(at::kFloat), pool));
      }
      for (int64_t i = 0; i < R; ++i) {
        if (row_queries[i] >= r0 && row_queries[i] < r1)
          s.rows.slice(0, h0, h1).select(1, i).copy_(probs.select(1, row_queries[i] - r0));
      }
    }
  }
  const at::Tensor recall =
      options.compare_dense ? recall_sum / N : at::full({H}, std::numeric_limits<double>::quiet_NaN(), sum_options);
  s.stats = at::stack({recall, kept / static_cast<double>(cells), entropy_sum / N}, 1).to(at::kFloat).cpu();
  return s;
}

}  // namespace sparsescope::vision::detail
