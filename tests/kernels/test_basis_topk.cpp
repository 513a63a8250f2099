// The basis top-k selection against its definition in float64: a valid selection keeps min(k, N)
// distinct keys, none scoring below a key it leaves out. The CUDA kernel also keeps the
// lowest-indexed of tied keys.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "sparsescope/kernels/basis_topk.h"
#include "sparsescope/kernels/error.h"

namespace {

struct Inputs {
  at::Tensor values, slots, basis;
};

// Mask-predictor-shaped inputs: T distinct slots of S per row with softmax-like weights, a basis with
// some entries zeroed (thresholded) and `zero_columns` keys that no basis row reaches (score 0).
Inputs inputs(int64_t b, int64_t h, int64_t r, int64_t t, int64_t s, int64_t n, int64_t zero_columns, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor slots = std::get<1>(at::rand({b, h, r, s}, gen).sort(-1)).narrow(-1, 0, t).contiguous();
  const at::Tensor values = at::softmax(at::randn({b, h, r, t}, gen), -1);
  at::Tensor basis = at::rand({s, n}, gen);
  basis = at::where(basis < 0.3, at::zeros_like(basis), basis);
  basis.narrow(1, n - zero_columns, zero_columns).zero_();
  return {values, slots, basis};
}

// Scores [B, H, R, N] in float64 by the definition.
at::Tensor scores_of(const Inputs& in) {
  const auto sizes = in.values.sizes();
  at::Tensor coef = at::zeros({sizes[0], sizes[1], sizes[2], in.basis.size(0)}, at::kDouble);
  coef.scatter_add_(-1, in.slots.cpu(), in.values.cpu().to(at::kDouble));
  return at::matmul(coef, in.basis.cpu().to(at::kDouble));
}

// Every row keeps min(k, N) distinct keys, and none it keeps scores below one it leaves out
// (by more than `tol`, the float32 rounding of the scores).
void expect_valid(const at::Tensor& index, const at::Tensor& scores, int64_t k, double tol) {
  const int64_t n = scores.size(-1), kept = std::min(k, n);
  ASSERT_EQ(index.size(-1), kept);
  ASSERT_EQ(index.scalar_type(), at::kLong);
  const at::Tensor idx = index.cpu().reshape({-1, kept});
  const at::Tensor sc = scores.reshape({-1, n});
  for (int64_t row = 0; row < idx.size(0); ++row) {
    const at::Tensor chosen = idx[row];
    ASSERT_EQ(std::get<0>(at::_unique(chosen)).numel(), kept) << "row " << row << " repeats a key";
    ASSERT_TRUE((chosen >= 0).all().item<bool>() && (chosen < n).all().item<bool>()) << "row " << row;
    if (kept == n) continue;
    at::Tensor left = at::ones({n}, at::kBool);
    left.index_fill_(0, chosen, false);
    const double lowest_kept = sc[row].index_select(0, chosen).min().item<double>();
    const double highest_left = sc[row].masked_select(left).max().item<double>();
    EXPECT_GE(lowest_kept, highest_left - tol) << "row " << row;
  }
}

TEST(BasisTopk, ReferenceSelectsTheLargestScores) {
  const Inputs in = inputs(2, 3, 11, 8, 13, 77, 9, 1);
  for (const int64_t k : {1, 20, 68, 77, 100}) {
    SCOPED_TRACE(std::to_string(k));
    expect_valid(sparsescope::basis_topk(in.values, in.slots, in.basis, k), scores_of(in), k, 1e-6);
  }
}

TEST(BasisTopk, BadInputIsAnErrorNamingIt) {
  const Inputs in = inputs(1, 1, 4, 2, 5, 9, 0, 2);
  EXPECT_THROW(sparsescope::basis_topk(in.values, in.slots.narrow(-1, 0, 1), in.basis, 3), sparsescope::Error);
  EXPECT_THROW(sparsescope::basis_topk(in.values, in.slots, in.basis.view({-1}), 3), sparsescope::Error);
  EXPECT_THROW(sparsescope::basis_topk(in.values, in.slots.to(at::kInt), in.basis, 3), sparsescope::Error);
  EXPECT_THROW(sparsescope::basis_topk(in.values, in.slots, in.basis, 0), sparsescope::Error);
  try {
    sparsescope::basis_topk(in.values, in.slots + 5, in.basis, 3);
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("slots outside [0, 5)"), std::string::npos) << e.what();
  }
}

TEST(BasisTopkCuda, SelectsTheLargestScoresAndTheLowestTiedKeys) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  // N = 577 (ViT at 384 px), a non-multiple of 32; 100 keys score exactly 0, so small rows of
  // nonzero scores tie at 0 below k.
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const Inputs in = inputs(2, 3, 57, 8, 96, 577, 100, 3);
    const Inputs gpu{in.values.to(dtype).cuda(), in.slots.cuda(), in.basis.to(dtype).cuda()};
    const Inputs rounded{gpu.values.cpu(), in.slots, gpu.basis.cpu()};  // the scores the kernel sees
    const at::Tensor scores = scores_of(rounded);
    for (const int64_t k : {1, 145, 500, 577, 600}) {
      SCOPED_TRACE(std::string(c10::toString(dtype)) + " k " + std::to_string(k));
      const at::Tensor index = sparsescope::basis_topk(gpu.values, gpu.slots, gpu.basis, k);
      ASSERT_TRUE(index.is_cuda());
      expect_valid(index, scores, k, 1e-5);
      // Of the keys tied at the k-th score the lowest-indexed are kept: the kept ones at that
      // score are a prefix of the tied keys in index order.
      if (k >= 577) continue;
      const at::Tensor idx = index.cpu().reshape({-1, k}), sc = scores.reshape({-1, 577});
      for (int64_t row = 0; row < idx.size(0); ++row) {
        const at::Tensor kept_scores = sc[row].index_select(0, idx[row]);
        const double kth = kept_scores.min().item<double>();
        const at::Tensor tied = (sc[row] == kth).nonzero().flatten();
        const at::Tensor kept_tied = std::get<0>(idx[row].masked_select(kept_scores == kth).sort());
        ASSERT_TRUE(at::equal(kept_tied, tied.narrow(0, 0, kept_tied.numel()))) << "row " << row;
      }
    }
  }
}

}  // namespace
