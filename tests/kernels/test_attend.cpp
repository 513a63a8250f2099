#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "cases.h"
#include "oracle.h"
#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/kernels/probe.h"
#include "sparsescope/kernels/version.h"

namespace {

using sparsescope::AttendResult;
using sparsescope::Pattern;
using sparsescope::testing::Case;
using sparsescope::testing::expect_lse_near;
using sparsescope::testing::oracle;

struct Tolerance {
  double out, lse;
};

Tolerance tolerance(at::ScalarType dtype) {
  switch (dtype) {
    case at::kDouble: return {1e-10, 1e-10};
    case at::kFloat: return {2e-5, 2e-5};
    case at::kHalf: return {2e-3, 2e-5};      // the output is rounded to 11 bits
    default: return {1.6e-2, 2e-5};           // bfloat16: 8 bits
  }
}

std::string dtype_name(at::ScalarType t) { return c10::getDtypeNames(t).first; }

struct Inputs {
  at::Tensor q, k, v;
};

Inputs inputs(const Case& c, at::ScalarType dtype) {
  return {at::randn({c.batch, c.heads, c.n, c.d}).to(dtype),
          at::randn({c.batch, c.heads, c.m, c.d}).to(dtype),
          at::randn({c.batch, c.heads, c.m, c.dv}).to(dtype)};
}

double scale_for(const Case& c, const Pattern& p) {
  return sparsescope::scale_of(p).value_or(1.0 / std::sqrt(static_cast<double>(c.d)));
}

class AttendCase : public ::testing::TestWithParam<std::tuple<Case, at::ScalarType>> {};

TEST_P(AttendCase, MatchesDenseAttentionOverTheMaterializedMask) {
  const auto& [c, dtype] = GetParam();
  at::manual_seed(7);
  const Pattern pattern = sparsescope::testing::for_dtype(c.make(), dtype);
  const Inputs x = inputs(c, dtype);
  const at::Tensor keep = sparsescope::materialize(pattern, c.n, c.m);
  const auto want = oracle(x.q, x.k, x.v, keep, scale_for(c, pattern), sparsescope::testing::bias_of(pattern));

  const AttendResult got = sparsescope::attend_lse(x.q, x.k, x.v, pattern);
  ASSERT_EQ(got.out.sizes(), (std::vector<int64_t>{c.batch, c.heads, c.n, c.dv}));
  ASSERT_EQ(got.out.scalar_type(), dtype);
  ASSERT_EQ(got.lse.sizes(), (std::vector<int64_t>{c.batch, c.heads, c.n}));
  ASSERT_EQ(got.lse.scalar_type(), dtype == at::kDouble ? at::kDouble : at::kFloat);
  const Tolerance tol = tolerance(dtype);
  EXPECT_LE((got.out.to(at::kDouble) - want.out).abs().max().item<double>(), tol.out);
  expect_lse_near(got.lse, want.lse, tol.lse);
  EXPECT_TRUE(at::equal(sparsescope::attend(x.q, x.k, x.v, pattern), got.out));
}

TEST_P(AttendCase, QueriesWithoutKeysGiveZeroAndMinusInfinity) {
  const auto& [c, dtype] = GetParam();
  at::manual_seed(7);
  const Pattern pattern = sparsescope::testing::for_dtype(c.make(), dtype);
  const Inputs x = inputs(c, dtype);
  const at::Tensor keep = sparsescope::materialize(pattern, c.n, c.m)
                              .expand({c.batch, c.heads, c.n, c.m});
  // materialize() drops keys whose bias is -inf, so `keep` covers biased-away rows too.
  const at::Tensor empty = keep.any(-1).logical_not();
  const AttendResult got = sparsescope::attend_lse(x.q, x.k, x.v, pattern);
  EXPECT_TRUE(got.lse.isneginf().equal(empty));
  EXPECT_EQ(got.out.masked_select(empty.unsqueeze(-1)).abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(got.out.isnan().any().item<bool>());
}

std::vector<std::tuple<Case, at::ScalarType>> all_cases() {
  std::vector<std::tuple<Case, at::ScalarType>> out;
  for (const Case& c : sparsescope::testing::cases())
    for (at::ScalarType t : {at::kDouble, at::kFloat, at::kHalf, at::kBFloat16}) out.emplace_back(c, t);
  return out;
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<Case, at::ScalarType>>& info) {
  return std::get<0>(info.param).name + "_" + dtype_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Patterns, AttendCase, ::testing::ValuesIn(all_cases()), case_name);

// Gradients of out and LSE (where finite) against the dense masked formulation, in float64.
class GradientCase : public ::testing::TestWithParam<Case> {};

TEST_P(GradientCase, MatchesDenseMaskedGradients) {
  const Case& c = GetParam();
  at::manual_seed(11);
  const Pattern pattern = sparsescope::testing::for_dtype(c.make(), at::kDouble);
  const Inputs x = inputs(c, at::kDouble);
  const at::Tensor keep = sparsescope::materialize(pattern, c.n, c.m);
  const at::Tensor bias = sparsescope::testing::bias_of(pattern);
  const at::Tensor g_out = at::randn({c.batch, c.heads, c.n, c.dv}, at::kDouble);
  const at::Tensor g_lse = at::randn({c.batch, c.heads, c.n}, at::kDouble);

  auto grads = [&](bool ours) {
    const at::Tensor q = x.q.clone().requires_grad_(true);
    const at::Tensor k = x.k.clone().requires_grad_(true);
    const at::Tensor v = x.v.clone().requires_grad_(true);
    at::Tensor out, lse;
    if (ours) {
      const AttendResult r = sparsescope::attend_lse(q, k, v, pattern);
      out = r.out;
      lse = r.lse;
    } else {
      const auto r = oracle(q, k, v, keep, scale_for(c, pattern), bias);
      out = r.out;
      lse = r.lse;
    }
    const at::Tensor finite_lse = at::where(lse.isfinite(), lse, at::zeros_like(lse));
    ((out * g_out).sum() + (finite_lse * g_lse).sum()).backward();
    return std::vector<at::Tensor>{q.grad(), k.grad(), v.grad()};
  };
  const auto ours = grads(true);
  const auto want = grads(false);
  for (size_t i = 0; i < ours.size(); ++i) {
    ASSERT_TRUE(ours[i].defined()) << "input " << i;
    EXPECT_FALSE(ours[i].isnan().any().item<bool>()) << "input " << i;
    EXPECT_LE((ours[i] - want[i]).abs().max().item<double>(), 1e-10) << "input " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Patterns, GradientCase, ::testing::ValuesIn(sparsescope::testing::cases()),
                         [](const auto& info) { return info.param.name; });

// Grouped-query attention: one K/V head for all query heads is the oracle over K/V repeated per
// head, forward and backward (the gradient of the shared K/V sums over its query heads).
class GroupedQueryCase : public ::testing::TestWithParam<Case> {};

TEST_P(GroupedQueryCase, SharedKvHeadsMatchTheRepeatedOracle) {
  const Case& c = GetParam();
  at::manual_seed(13);
  const Pattern pattern = sparsescope::testing::for_dtype(c.make(), at::kDouble);
  const at::Tensor q = at::randn({c.batch, c.heads, c.n, c.d}, at::kDouble).requires_grad_(true);
  const at::Tensor k = at::randn({c.batch, 1, c.m, c.d}, at::kDouble).requires_grad_(true);
  const at::Tensor v = at::randn({c.batch, 1, c.m, c.dv}, at::kDouble).requires_grad_(true);
  const at::Tensor keep = sparsescope::materialize(pattern, c.n, c.m);
  const at::Tensor g = at::randn({c.batch, c.heads, c.n, c.dv}, at::kDouble);

  const AttendResult got = sparsescope::attend_lse(q, k, v, pattern);
  const auto want = oracle(q, k.expand({c.batch, c.heads, c.m, c.d}), v.expand({c.batch, c.heads, c.m, c.dv}), keep,
                           scale_for(c, pattern), sparsescope::testing::bias_of(pattern));
  EXPECT_LE((got.out - want.out).abs().max().item<double>(), 1e-10);
  expect_lse_near(got.lse, want.lse, 1e-10);
  const auto grads = [&](const at::Tensor& out) {
    return torch::autograd::grad({(out * g).sum()}, {q, k, v}, {}, /*retain_graph=*/true);
  };
  const auto ours = grads(got.out), theirs = grads(want.out);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_LE((ours[i] - theirs[i]).abs().max().item<double>(), 1e-10) << "input " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Patterns, GroupedQueryCase, ::testing::ValuesIn(sparsescope::testing::cases()),
                         [](const auto& info) { return info.param.name; });

TEST(GroupedQuery, KvHeadsMustDivideQueryHeads) {
  const at::Tensor q = at::randn({1, 6, 5, 8}), k = at::randn({1, 4, 5, 8});
  try {
    sparsescope::attend(q, k, k, sparsescope::Dense{});
    FAIL() << "4 K/V heads for 6 query heads were accepted";
  } catch (const sparsescope::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "sparsescope::attend: expected `key` [B, H_kv, M, D] with H_kv dividing H = 6 (from `query`), got tensor "
              "[1, 4, 5, 8]");
  }
}

// Central differences against autograd on tiny float64 problems (torch.autograd.gradcheck's
// method), the additive bias of a Dense pattern included.
double numeric_check(const std::vector<at::Tensor>& inputs,
                     const std::function<at::Tensor(const std::vector<at::Tensor>&)>& f) {
  std::vector<at::Tensor> leaves;
  for (const auto& t : inputs) leaves.push_back(t.clone().requires_grad_(true));
  f(leaves).backward();
  double worst = 0;
  constexpr double kEps = 1e-6;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const at::Tensor analytic = leaves[i].grad().flatten();
    for (int64_t j = 0; j < analytic.numel(); ++j) {
      std::vector<at::Tensor> plus, minus;
      for (const auto& t : inputs) {
        plus.push_back(t.clone());
        minus.push_back(t.clone());
      }
      plus[i].view(-1)[j] += kEps;
      minus[i].view(-1)[j] -= kEps;
      const double numeric = (f(plus) - f(minus)).item<double>() / (2 * kEps);
      worst = std::max(worst, std::abs(numeric - analytic[j].item<double>()));
    }
  }
  return worst;
}

TEST(Gradcheck, TinyProblemsOfEveryPattern) {
  at::manual_seed(3);
  const int64_t n = 5, m = 6, d = 3;
  at::Tensor bias = at::randn({1, 1, n, m}, at::kDouble);
  bias.index_put_({0, 0, 1, 2}, -INFINITY);
  const at::Tensor topk = at::tensor({0, 2, -1, 4, 4, 5, 1, -1, 3, 0, 0, 0, 5, 4, 3}, at::kLong)
                              .view({1, 1, n, 3});
  const auto [count, index] = sparsescope::testing::random_blocks(1, 1, 3, 3, 2);
  const std::vector<std::pair<std::string, Pattern>> patterns = {
      {"dense_causal", sparsescope::Dense{true, {}, {}}},
      {"topk", sparsescope::TopK{topk, {}}},
      {"block_sparse", sparsescope::BlockSparse{2, 2, count, index, {}, {}, {}}},
  };
  const std::vector<at::Tensor> qkv = {at::randn({1, 1, n, d}, at::kDouble),
                                       at::randn({1, 1, m, d}, at::kDouble),
                                       at::randn({1, 1, m, d}, at::kDouble)};
  const at::Tensor w = at::randn({1, 1, n, d}, at::kDouble);
  for (const auto& [name, pattern] : patterns) {
    const double err = numeric_check(qkv, [&](const std::vector<at::Tensor>& t) {
      const AttendResult r = sparsescope::attend_lse(t[0], t[1], t[2], pattern);
      const at::Tensor lse = at::where(r.lse.isfinite(), r.lse, at::zeros_like(r.lse));
      return (r.out * w).sum() + lse.sum();
    });
    EXPECT_LE(err, 1e-7) << name;
  }
  std::vector<at::Tensor> with_bias = qkv;
  with_bias.push_back(bias);
  const double err = numeric_check(with_bias, [&](const std::vector<at::Tensor>& t) {
    const Pattern p = sparsescope::Dense{false, {}, t[3]};
    return (sparsescope::attend(t[0], t[1], t[2], p) * w).sum();
  });
  EXPECT_LE(err, 1e-7) << "dense_bias";
  const Pattern neighborhood = sparsescope::Neighborhood{{2, 3}, {2, 2}, {}, {false, true}, {}};
  const std::vector<at::Tensor> six = {at::randn({1, 1, 6, d}, at::kDouble),
                                       at::randn({1, 1, 6, d}, at::kDouble),
                                       at::randn({1, 1, 6, d}, at::kDouble)};
  const at::Tensor w6 = at::randn({1, 1, 6, d}, at::kDouble);
  EXPECT_LE(numeric_check(six, [&](const std::vector<at::Tensor>& t) {
              return (sparsescope::attend(t[0], t[1], t[2], neighborhood) * w6).sum();
            }),
            1e-7)
      << "neighborhood";
}

TEST(EmptyRows, KeyListsOfWidthZeroAndNoKeysAtAll) {
  const at::Tensor q = at::randn({1, 2, 3, 4}), k = at::randn({1, 2, 5, 4});
  const AttendResult none = sparsescope::attend_lse(q, k, k, sparsescope::TopK{at::zeros({1, 1, 3, 0}, at::kLong), {}});
  EXPECT_TRUE(none.out.eq(0).all().item<bool>());
  EXPECT_TRUE(none.lse.isneginf().all().item<bool>());
  const at::Tensor no_keys = at::randn({1, 2, 0, 4});
  const AttendResult empty = sparsescope::attend_lse(q, no_keys, no_keys, sparsescope::Dense{});
  EXPECT_EQ(empty.out.sizes(), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(empty.out.eq(0).all().item<bool>());
  EXPECT_TRUE(empty.lse.isneginf().all().item<bool>());
}

// A float bias learns through attend(): SwinBERT's soft mask trains this way.
TEST(Autograd, BiasOfADensePatternGetsGradients) {
  at::manual_seed(5);
  const at::Tensor q = at::randn({1, 2, 4, 8}), k = at::randn({1, 2, 6, 8}), v = at::randn({1, 2, 6, 8});
  const at::Tensor bias = at::zeros({1, 1, 4, 6}).requires_grad_(true);
  sparsescope::attend(q, k, v, sparsescope::Dense{false, {}, bias}).pow(2).sum().backward();
  ASSERT_TRUE(bias.grad().defined());
  EXPECT_GT(bias.grad().abs().sum().item<double>(), 0.0);
}

class RecordingProbe : public sparsescope::Probe {
 public:
  void observe(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const Pattern& pattern,
               double scale) override {
    ++calls;
    kind = sparsescope::kind_name(pattern);
    seen_scale = scale;
    same_tensors = q.is_same(*expect_q) && k.is_same(*expect_k) && v.is_same(*expect_v);
  }
  int calls = 0;
  std::string kind;
  double seen_scale = 0;
  bool same_tensors = false;
  const at::Tensor* expect_q = nullptr;
  const at::Tensor* expect_k = nullptr;
  const at::Tensor* expect_v = nullptr;
};

TEST(Probe, IsCalledOnceWithTheCallersPatternAndTheResolvedScale) {
  const at::Tensor q = at::randn({1, 2, 6, 16}), k = at::randn({1, 2, 6, 16}), v = at::randn({1, 2, 6, 16});
  RecordingProbe probe;
  probe.expect_q = &q;
  probe.expect_k = &k;
  probe.expect_v = &v;
  sparsescope::attend(q, k, v, sparsescope::Dense{}, &probe);
  EXPECT_EQ(probe.calls, 1);
  EXPECT_EQ(probe.kind, "dense");
  EXPECT_DOUBLE_EQ(probe.seen_scale, 0.25);
  EXPECT_TRUE(probe.same_tensors);

  const at::Tensor perm = at::arange(6).flip(0).view({1, 1, 6});
  const Pattern p = sparsescope::permuted(perm, perm, sparsescope::Neighborhood{{6}, {3}, {}, {}, 0.5});
  sparsescope::attend_lse(q, k, v, p, &probe);
  EXPECT_EQ(probe.calls, 2);  // the inner pattern is not reported again
  EXPECT_EQ(probe.kind, "permuted");
  EXPECT_DOUBLE_EQ(probe.seen_scale, 0.5);
}

TEST(Probe, IsNotCalledWhenTheInputsAreRejected) {
  RecordingProbe probe;
  const at::Tensor q = at::randn({1, 2, 6, 16});
  EXPECT_THROW(sparsescope::attend(q, q, q, sparsescope::TopK{at::full({1, 1, 6, 1}, 9, at::kLong), {}}, &probe),
               sparsescope::Error);
  EXPECT_EQ(probe.calls, 0);
}

// Looks a backend up by name: builds with CUDA put the fused backends first.
sparsescope::BackendChoice backend(const std::vector<sparsescope::BackendChoice>& choices,
                                   const std::string& name) {
  for (const auto& c : choices)
    if (c.name == name) return c;
  ADD_FAILURE() << "no backend " << name;
  return {};
}

TEST(Backends, ExplainTheChoice) {
  const at::Tensor q = at::randn({1, 1, 4, 8});
  const auto dense = sparsescope::backend_choices(q, q, q, sparsescope::Dense{});
  ASSERT_GE(dense.size(), 2u);
  EXPECT_EQ(dense[dense.size() - 2].name, "permuted");
  EXPECT_EQ(dense.back().name, "reference");
  for (const auto& c : dense) EXPECT_EQ(c.usable, c.name == "reference") << c.name;
  EXPECT_EQ(backend(dense, "permuted").why_not, "not a Permuted pattern (dense)");
  const at::Tensor perm = at::arange(4).view({1, 1, 4});
  const auto permuted = sparsescope::backend_choices(q, q, q, sparsescope::permuted(perm, perm, sparsescope::Dense{}));
  EXPECT_TRUE(backend(permuted, "permuted").usable);
  EXPECT_FALSE(backend(permuted, "reference").usable);
  EXPECT_EQ(backend(permuted, "reference").why_not, "Permuted is lowered onto its inner pattern first");
}

// A CUDA build lists its fused backends first; on CPU tensors they refuse and say why.
TEST(Backends, FusedCudaBackendsComeFirstAndRefuseCpuTensors) {
  if (!sparsescope::built_with_cuda()) GTEST_SKIP() << "built without CUDA";
  const at::Tensor q = at::randn({1, 1, 4, 64}).to(at::kHalf);
  const auto choices = sparsescope::backend_choices(q, q, q, sparsescope::Dense{});
  ASSERT_EQ(choices.size(), 7u);
  EXPECT_EQ(choices[0].name, "cuda_dense");
  EXPECT_EQ(choices[1].name, "cuda_block_sparse");
  EXPECT_EQ(choices[2].name, "cuda_topk");
  EXPECT_EQ(choices[3].name, "cuda_neighborhood");
  EXPECT_EQ(choices[4].name, "cuda_permuted");
  EXPECT_EQ(choices[0].why_not, "`query` is on cpu, not a CUDA device");
  EXPECT_EQ(choices[1].why_not, "not a BlockSparse pattern (dense)");
  EXPECT_EQ(choices[3].why_not, "not a Neighborhood pattern (dense)");
  EXPECT_EQ(choices[4].why_not, "not a Permuted pattern (dense)");
  // The fused Permuted asks its inner pattern's kernel.
  const at::Tensor perm = at::arange(4).view({1, 1, 4});
  const auto permuted = sparsescope::backend_choices(q, q, q, sparsescope::permuted(perm, perm, sparsescope::Dense{}));
  EXPECT_EQ(backend(permuted, "cuda_permuted").why_not, "inner dense: `query` is on cpu, not a CUDA device");
  const auto nested = sparsescope::backend_choices(
      q, q, q, sparsescope::permuted(perm, perm, sparsescope::permuted(perm, perm, sparsescope::Dense{})));
  EXPECT_EQ(backend(nested, "cuda_permuted").why_not, "inner permuted: no kernel for its inner pattern");
}

}  // namespace
