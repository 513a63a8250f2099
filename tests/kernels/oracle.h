#pragma once
// The oracle the patterns are tested against: dense attention in float64 over an explicit keep
// mask, written independently of the library (logsumexp, no shared code).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <limits>

namespace sparsescope::testing {

struct Oracle {
  at::Tensor out;  // [B, H, N, Dv] float64
  at::Tensor lse;  // [B, H, N] float64, -inf for queries without keys
};

/// keep [B|1, H|1, N, M] bool; bias undefined or [B|1, H|1, N, M] additive.
inline Oracle oracle(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& keep, double scale, const at::Tensor& bias = {}) {
  at::Tensor scores = at::matmul(q.to(at::kDouble), k.to(at::kDouble).transpose(-1, -2)) * scale;
  if (bias.defined()) scores = scores + bias.to(at::kDouble);
  scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  // Rows without a finite score have probabilities 0 and LSE -inf; they are computed on zeros
  // instead, so that no NaN reaches the gradients.
  const at::Tensor seen = scores.isfinite().any(-1, /*keepdim=*/true);
  const at::Tensor safe = at::where(seen, scores, at::zeros_like(scores));
  const at::Tensor lse = safe.logsumexp(-1, /*keepdim=*/true);
  const at::Tensor p = at::where(seen, (safe - lse).exp(), at::zeros_like(scores));
  const at::Tensor out = at::matmul(p, v.to(at::kDouble));
  return {out, at::where(seen, lse, at::full_like(lse, -std::numeric_limits<double>::infinity()))
                   .squeeze(-1)};
}

/// Where `want` is -inf `got` is too; elsewhere they differ by at most `tol`.
inline void expect_lse_near(const at::Tensor& got, const at::Tensor& want, double tol) {
  const at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
  ASSERT_TRUE(at::equal(g.isneginf(), w.isneginf()));
  const at::Tensor finite = w.isfinite();
  if (!finite.any().item<bool>()) return;
  EXPECT_LE((g.masked_select(finite) - w.masked_select(finite)).abs().max().item<double>(), tol);
}

}  // namespace sparsescope::testing
