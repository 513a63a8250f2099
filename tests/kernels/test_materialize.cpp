#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "cases.h"
#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/block_mask.h"

namespace {

using sparsescope::BlockSparse;
using sparsescope::Dense;
using sparsescope::Neighborhood;
using sparsescope::TopK;

std::set<int64_t> keys_of(const at::Tensor& mask2d, int64_t query) {
  std::set<int64_t> keys;
  const at::Tensor row = mask2d[query];
  for (int64_t j = 0; j < row.size(0); ++j)
    if (row[j].item<bool>()) keys.insert(j);
  return keys;
}

at::Tensor neighborhood_1d(int64_t length, int64_t kernel, int64_t dilation = 1, bool causal = false) {
  return sparsescope::materialize(Neighborhood{{length}, {kernel}, {dilation}, {causal}, {}}, length, length)[0][0];
}

TEST(Materialize, DenseCausalIsTopLeftAlignedForAnyShape) {
  for (auto [n, m] : {std::pair<int64_t, int64_t>{5, 9}, {9, 5}, {4, 4}}) {
    const at::Tensor mask = sparsescope::materialize(Dense{true, {}, {}}, n, m);
    EXPECT_EQ(mask.sizes(), (std::vector<int64_t>{1, 1, n, m}));
    EXPECT_TRUE(mask[0][0].equal(at::ones({n, m}, at::kBool).tril())) << n << "x" << m;
  }
}

TEST(Materialize, DenseMasksKeepTrueAndFiniteBias) {
  const at::Tensor bool_mask = at::rand({2, 1, 3, 4}) < 0.5;
  EXPECT_TRUE(sparsescope::materialize(Dense{false, {}, bool_mask}, 3, 4).equal(bool_mask));
  at::Tensor bias = at::randn({1, 2, 3, 4});
  bias[0][1][2][1] = -INFINITY;
  const at::Tensor kept = sparsescope::materialize(Dense{true, {}, bias}, 3, 4);
  EXPECT_EQ(kept.sizes(), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(kept.sum().item<int64_t>(), 2 * (1 + 2 + 3) - 1);
  EXPECT_FALSE(kept[0][1][2][1].item<bool>());
}

TEST(Materialize, TopKIgnoresPaddingAndRepeats) {
  const at::Tensor index = at::tensor({2, -1, 2, 0, -1, -1}, at::kLong).view({1, 1, 2, 3});
  const at::Tensor mask = sparsescope::materialize(TopK{index, {}}, 2, 4);
  const at::Tensor want = at::tensor({0, 0, 1, 0, 1, 0, 0, 0}, at::kLong).view({1, 1, 2, 4}).to(at::kBool);
  EXPECT_TRUE(mask.equal(want));
}

TEST(Materialize, BlockSparseMatchesABlockByBlockLoop) {
  at::manual_seed(1);
  const int64_t n = 23, m = 31, bq = 4, bk = 7;
  const int64_t rows = sparsescope::testing::ceil_div(n, bq), cols = sparsescope::testing::ceil_div(m, bk);
  const auto [count, index] = sparsescope::testing::random_blocks(2, 1, rows, cols, 3);
  const auto [full_count, full_index] = sparsescope::testing::random_blocks(1, 3, rows, cols, 2);
  const at::Tensor mask =
      sparsescope::materialize(BlockSparse{bq, bk, count, index, full_count, full_index, {}}, n, m);
  ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{2, 3, n, m}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t i = 0; i < n; ++i) {
        std::set<int64_t> blocks;
        for (int64_t s = 0; s < count[b][0][i / bq].item<int>(); ++s) blocks.insert(index[b][0][i / bq][s].item<int>());
        for (int64_t s = 0; s < full_count[0][h][i / bq].item<int>(); ++s)
          blocks.insert(full_index[0][h][i / bq][s].item<int>());
        for (int64_t j = 0; j < m; ++j)
          ASSERT_EQ(mask[b][h][i][j].item<bool>(), blocks.count(j / bk) == 1) << b << h << i << j;
      }
}

TEST(Materialize, NeighborhoodWindowsShiftInwardAtTheBorders) {
  const at::Tensor plain = neighborhood_1d(7, 3);
  EXPECT_EQ(keys_of(plain, 0), (std::set<int64_t>{0, 1, 2}));
  EXPECT_EQ(keys_of(plain, 3), (std::set<int64_t>{2, 3, 4}));
  EXPECT_EQ(keys_of(plain, 6), (std::set<int64_t>{4, 5, 6}));
  const at::Tensor even = neighborhood_1d(8, 4);  // two keys to the left, one to the right
  EXPECT_EQ(keys_of(even, 0), (std::set<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(keys_of(even, 4), (std::set<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(keys_of(even, 7), (std::set<int64_t>{4, 5, 6, 7}));
  const at::Tensor dilated = neighborhood_1d(7, 3, 2);  // groups {0, 2, 4, 6} and {1, 3, 5}
  EXPECT_EQ(keys_of(dilated, 0), (std::set<int64_t>{0, 2, 4}));
  EXPECT_EQ(keys_of(dilated, 6), (std::set<int64_t>{2, 4, 6}));
  EXPECT_EQ(keys_of(dilated, 1), (std::set<int64_t>{1, 3, 5}));
  EXPECT_EQ(keys_of(dilated, 5), (std::set<int64_t>{1, 3, 5}));
  const at::Tensor causal = neighborhood_1d(7, 3, 1, true);
  EXPECT_EQ(keys_of(causal, 0), (std::set<int64_t>{0}));
  EXPECT_EQ(keys_of(causal, 1), (std::set<int64_t>{0, 1}));
  EXPECT_EQ(keys_of(causal, 4), (std::set<int64_t>{2, 3, 4}));
  const at::Tensor causal_dilated = neighborhood_1d(9, 2, 3, true);
  EXPECT_EQ(keys_of(causal_dilated, 2), (std::set<int64_t>{2}));
  EXPECT_EQ(keys_of(causal_dilated, 7), (std::set<int64_t>{4, 7}));
}

// NATTEN's original dilated window start (odd kernels, CPU kernels of NATTEN <= 0.15), written as
// it was: an independent formulation of the dilation-group windows.
int64_t natten_legacy_start(int64_t index, int64_t length, int64_t kernel, int64_t dilation) {
  const int64_t half = kernel / 2;
  if (dilation <= 1)
    return std::max<int64_t>(index - half, 0) +
           (index + half >= length) * (length - index - half - 1);
  if (index - half * dilation < 0) return index % dilation;
  if (index + half * dilation >= length) {
    const int64_t imodd = index % dilation;
    const int64_t a = (length / dilation) * dilation;
    const int64_t b = length - a;
    if (imodd < b) return length - b + imodd - 2 * half * dilation;
    return a + imodd - kernel * dilation;
  }
  return index - half * dilation;
}

TEST(Materialize, NeighborhoodMatchesNattensLegacyFormulaForOddKernels) {
  for (int64_t length = 1; length <= 17; ++length)
    for (int64_t kernel = 1; kernel <= length; kernel += 2)
      for (int64_t dilation = 1; kernel * dilation <= length; ++dilation) {
        const at::Tensor mask = neighborhood_1d(length, kernel, dilation);
        for (int64_t i = 0; i < length; ++i) {
          const int64_t start = natten_legacy_start(i, length, kernel, dilation);
          std::set<int64_t> want;
          for (int64_t t = 0; t < kernel; ++t) want.insert(start + t * dilation);
          ASSERT_EQ(keys_of(mask, i), want) << "L=" << length << " k=" << kernel << " d=" << dilation << " i=" << i;
        }
      }
}

TEST(Materialize, NeighborhoodAxesCombineAsAProductOfWindows) {
  const Neighborhood p{{4, 5, 6}, {3, 2, 3}, {1, 2, 2}, {false, true, false}, {}};
  const at::Tensor mask = sparsescope::materialize(p, 120, 120)[0][0];
  const at::Tensor t = neighborhood_1d(4, 3, 1, false), h = neighborhood_1d(5, 2, 2, true),
                   w = neighborhood_1d(6, 3, 2, false);
  const at::Tensor want = t.view({4, 1, 1, 4, 1, 1})
                              .logical_and(h.view({1, 5, 1, 1, 5, 1}))
                              .logical_and(w.view({1, 1, 6, 1, 1, 6}))
                              .reshape({120, 120});
  EXPECT_TRUE(mask.equal(want));
}

TEST(Materialize, NonCausalNeighborhoodsSeeExactlyTheKernelVolumeAndThemselves) {
  const Neighborhood p{{5, 7}, {3, 4}, {1, 1}, {}, {}};
  const at::Tensor mask = sparsescope::materialize(p, 35, 35)[0][0];
  EXPECT_TRUE(mask.sum(-1).eq(12).all().item<bool>());
  EXPECT_TRUE(mask.diagonal().all().item<bool>());
}

TEST(Materialize, PermutedMapsInnerPositionsBackToTokens) {
  at::manual_seed(2);
  const int64_t n = 6, m = 8;
  const at::Tensor perm = sparsescope::testing::random_perm(2, 1, n);
  const at::Tensor kv_perm = sparsescope::testing::random_perm(1, 3, m);
  const at::Tensor index = at::randint(-1, m, {1, 3, n, 3}, at::kLong);
  const at::Tensor inner = sparsescope::materialize(TopK{index, {}}, n, m);
  const at::Tensor mask = sparsescope::materialize(
      sparsescope::permuted(perm, sparsescope::testing::inverse_of(perm), TopK{index, {}}, kv_perm), n, m);
  ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{2, 3, n, m}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t a = 0; a < n; ++a)
        for (int64_t c = 0; c < m; ++c)
          ASSERT_EQ(mask[b][h][perm[b][0][a].item<int64_t>()][kv_perm[0][h][c].item<int64_t>()].item<bool>(),
                    inner[0][h][a][c].item<bool>());
}

TEST(BlockMask, FromBlockMaskUsesFlexAttentionsOrdering) {
  const at::Tensor blocks = at::tensor({1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1}, at::kLong)
                                .view({1, 1, 4, 4})
                                .to(at::kBool);
  const BlockSparse p = sparsescope::from_block_mask(blocks, 128, 64);
  EXPECT_EQ(p.block_q, 128);
  EXPECT_EQ(p.block_k, 64);
  EXPECT_EQ(p.kv_count.scalar_type(), at::kInt);
  EXPECT_EQ(p.kv_index.scalar_type(), at::kInt);
  EXPECT_TRUE(p.kv_count.equal(at::tensor({2, 0, 4, 1}, at::kInt).view({1, 1, 4})));
  EXPECT_TRUE(p.kv_index.equal(
      at::tensor({0, 2, 1, 3, 0, 1, 2, 3, 0, 1, 2, 3, 3, 0, 1, 2}, at::kInt).view({1, 1, 4, 4})));
  EXPECT_FALSE(p.full_kv_count.defined());
}

TEST(BlockMask, RoundTripsWithFullBlocks) {
  at::manual_seed(4);
  const at::Tensor partial = at::rand({2, 3, 5, 7}) < 0.3;
  const at::Tensor full = (at::rand({2, 3, 5, 7}) < 0.3).logical_and(partial.logical_not());
  const BlockSparse p = sparsescope::from_block_mask(partial, 16, 16, full);
  EXPECT_TRUE(sparsescope::to_block_mask(p, 7).equal(partial.logical_or(full)));
  BlockSparse only_partial = p;
  only_partial.full_kv_count = at::Tensor();
  only_partial.full_kv_index = at::Tensor();
  EXPECT_TRUE(sparsescope::to_block_mask(only_partial, 7).equal(partial));
  EXPECT_TRUE(sparsescope::from_block_mask(sparsescope::to_block_mask(only_partial, 7), 16, 16)
                  .kv_index.equal(p.kv_index));
}

TEST(BlockMask, IgnoresEntriesPastTheCount) {
  const at::Tensor count = at::tensor({1, 0}, at::kInt).view({1, 1, 2});
  const at::Tensor index = at::tensor({2, 0, 1, 1}, at::kInt).view({1, 1, 2, 2});
  const at::Tensor blocks = sparsescope::to_block_mask(BlockSparse{4, 4, count, index, {}, {}, {}}, 3);
  EXPECT_TRUE(blocks.equal(at::tensor({0, 0, 1, 0, 0, 0}, at::kLong).view({1, 1, 2, 3}).to(at::kBool)));
}

}  // namespace

// materialize_rows() is materialize() read by rows, for every pattern of the shared cases (the
// permuted ones with per-item, per-head permutations), rows shared or chosen per item and head.
TEST(MaterializeRows, EqualsTheRowsOfTheWholeMask) {
  for (const auto& c : sparsescope::testing::cases()) {
    at::manual_seed(3);
    const sparsescope::Pattern pattern = c.make();
    const at::Tensor whole = sparsescope::materialize(pattern, c.n, c.m);  // [B|1, H|1, n, m]
    const at::Tensor shared = at::tensor(std::vector<int64_t>{c.n - 1, 0, c.n / 2, 0}, at::kLong);
    const at::Tensor shared_rows = sparsescope::materialize_rows(pattern, c.n, c.m, shared);
    EXPECT_TRUE(shared_rows.equal(whole.index_select(2, shared))) << c.name;
    const at::Tensor own = at::randint(0, c.n, {c.batch, c.heads, 5}, at::kLong);
    const at::Tensor own_rows = sparsescope::materialize_rows(pattern, c.n, c.m, own);
    const at::Tensor want = whole.expand({c.batch, c.heads, c.n, c.m})
                                .gather(2, own.unsqueeze(-1).expand({c.batch, c.heads, 5, c.m}));
    EXPECT_TRUE(own_rows.expand_as(want).equal(want)) << c.name;
  }
}

TEST(MaterializeRows, RowsOutsideTheQueriesAreAClearError) {
  try {
    sparsescope::materialize_rows(Dense{}, 4, 4, at::tensor({1, 4}, at::kLong));
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(), "sparsescope::materialize_rows: `rows` holds queries outside [0, 4)");
  }
}
