#include <ATen/ATen.h>

#include <limits>

#include "../mask.h"
#include "reference.h"

namespace sparsescope::reference {

at::ScalarType working_dtype(at::ScalarType input) {
  return input == at::kDouble ? at::kDouble : at::kFloat;
}

AttendResult softmax_attention(const at::Tensor& scores, const at::Tensor& keep, const at::Tensor& v) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const at::Tensor s = keep.defined() ? scores.masked_fill(keep.logical_not(), -kInf) : scores;
  // The row maximum only keeps exp() in range; softmax and LSE do not depend on it, so it is
  // detached, and rows without a finite score (no key, or an all -inf bias) shift by 0 instead of
  // producing inf - inf.
  // amax() refuses an empty last dim (no keys at all): such rows shift by 0 too.
  at::Tensor shift = s.size(-1) > 0 ? s.detach().amax(-1, /*keepdim=*/true)
                                    : s.detach().sum(-1, /*keepdim=*/true);
  shift = shift.masked_fill(shift.isinf(), 0);
  const at::Tensor e = (s - shift).exp();
  const at::Tensor sum = e.sum(-1, /*keepdim=*/true);
  const at::Tensor seen = sum > 0;
  // Empty rows divide by 1 and take log(1): finite values whose branch where() discards, so their
  // gradients are 0 rather than NaN.
  const at::Tensor safe_sum = at::where(seen, sum, at::ones_like(sum));
  const at::Tensor out = at::matmul(e / safe_sum, v);
  const at::Tensor lse = at::where(seen, safe_sum.log() + shift, at::full_like(sum, -kInf));
  return {out, lse.squeeze(-1)};
}

AttendResult gathered_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& index, int64_t group, double scale) {
  const int64_t batch = q.size(0), heads = q.size(1), n = q.size(2), d = q.size(3);
  const int64_t dv = v.size(3);
  const int64_t groups = index.size(2), width = index.size(3);
  // Pad the queries to whole groups; the padded rows are computed and dropped.
  const at::Tensor qg = at::constant_pad_nd(q, {0, 0, 0, groups * group - n})
                            .view({batch, heads, groups, group, d});
  const at::Tensor idx = index.expand({batch, heads, groups, width});
  const at::Tensor keep = idx.ne(mask::kNoKey).unsqueeze(3);  // [B, H, G, 1, K]
  const at::Tensor flat = idx.clamp_min(0).reshape({batch, heads, groups * width, 1});
  const at::Tensor kg = k.gather(2, flat.expand({batch, heads, groups * width, d}))
                            .view({batch, heads, groups, width, d});
  const at::Tensor vg = v.gather(2, flat.expand({batch, heads, groups * width, dv}))
                            .view({batch, heads, groups, width, dv});
  const at::Tensor scores = at::matmul(qg, kg.transpose(-1, -2)) * scale;  // [B, H, G, group, K]
  const AttendResult r = softmax_attention(scores, keep, vg);
  return {r.out.reshape({batch, heads, groups * group, dv}).narrow(2, 0, n),
          r.lse.reshape({batch, heads, groups * group}).narrow(2, 0, n)};
}

}  // namespace sparsescope::reference
