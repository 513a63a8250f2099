#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/block_mask.h"
#include "sparsescope/kernels/error.h"

namespace {

using sparsescope::BlockSparse;
using sparsescope::Dense;
using sparsescope::Neighborhood;
using sparsescope::TopK;

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const sparsescope::Error& e) {
    return e.what();
  }
  return "(no error)";
}

const at::Tensor q = at::randn({1, 2, 4, 8});
const at::Tensor kv = at::randn({1, 2, 6, 8});

std::string attend_error(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value,
                         const sparsescope::Pattern& p) {
  return message_of([&] { sparsescope::attend(query, key, value, p); });
}

TEST(Checks, NameTheArgumentItsShapeAndTheExpectation) {
  EXPECT_EQ(attend_error(at::randn({2, 5, 8}), kv, kv, Dense{}),
            "sparsescope::attend: expected 4-D `query` [B, H, N, D], got 3-D tensor [2, 5, 8]");
  EXPECT_EQ(attend_error(q, at::randn({3, 2, 6, 8}), kv, Dense{}),
            "sparsescope::attend: expected `key` [B, H, M, D] with B = 1 (from `query`), got tensor "
            "[3, 2, 6, 8]");
  EXPECT_EQ(attend_error(q, kv, at::randn({1, 2, 5, 8}), Dense{}),
            "sparsescope::attend: expected `value` [B, H, M, Dv] with M = 6 (from `key`), got tensor "
            "[1, 2, 5, 8]");
  EXPECT_EQ(attend_error(q.to(at::kLong), kv, kv, Dense{}),
            "sparsescope::attend: expected `query` of dtype float32, float64, float16 or bfloat16, "
            "got int64 tensor [1, 2, 4, 8]");
  EXPECT_EQ(attend_error(q, kv.to(at::kDouble), kv, Dense{}),
            "sparsescope::attend: expected `key` of dtype float32 (the dtype of `query`), got "
            "float64 tensor [1, 2, 6, 8]");
  EXPECT_EQ(attend_error(q, at::empty({1, 2, 6, 8}, at::kMeta), kv, Dense{}),
            "sparsescope::attend: expected `key` on cpu (the device of `query`), got tensor "
            "[1, 2, 6, 8] on meta");
  EXPECT_EQ(attend_error(q.to_sparse(), kv, kv, Dense{}),
            "sparsescope::attend: expected strided `query`, got Sparse tensor [1, 2, 4, 8]");
}

TEST(Checks, RunInTheOrderDeviceDtypeLayoutShape) {
  const at::Tensor bad_everything = at::ones({3}, at::kLong).to_sparse();
  // device before dtype
  EXPECT_EQ(attend_error(q, at::empty({5}, at::TensorOptions(at::kLong).device(at::kMeta)), kv, Dense{}),
            "sparsescope::attend: expected `key` on cpu (the device of `query`), got tensor [5] on meta");
  // dtype before layout and shape
  EXPECT_EQ(attend_error(bad_everything, kv, kv, Dense{}),
            "sparsescope::attend: expected `query` of dtype float32, float64, float16 or bfloat16, "
            "got int64 tensor [3]");
  // layout before shape
  EXPECT_EQ(attend_error(at::randn({3}).to_sparse(), kv, kv, Dense{}),
            "sparsescope::attend: expected strided `query`, got Sparse tensor [3]");
  // pattern dtypes are checked before any shape
  EXPECT_EQ(attend_error(at::randn({4}), kv, kv, TopK{at::zeros({1}, at::kInt), {}}),
            "sparsescope::attend: expected `TopK.index` of dtype int64, got int32 tensor [1]");
}

TEST(Checks, PatternShapes) {
  EXPECT_EQ(attend_error(q, kv, kv, TopK{at::zeros({1, 1, 5, 2}, at::kLong), {}}),
            "sparsescope::attend: expected `TopK.index` [B|1, H|1, N, K] with N = 4 (from `query`), "
            "got tensor [1, 1, 5, 2]");
  EXPECT_EQ(attend_error(q, kv, kv, TopK{at::zeros({1, 3, 4, 2}, at::kLong), {}}),
            "sparsescope::attend: expected `TopK.index` [B|1, H|1, N, K] with H = 2 (from `query`) "
            "or 1, got tensor [1, 3, 4, 2]");
  const BlockSparse rows{3, 4, at::zeros({1, 1, 1}, at::kInt), at::zeros({1, 1, 1, 1}, at::kInt), {}, {}, {}};
  EXPECT_EQ(attend_error(q, kv, kv, rows),
            "sparsescope::attend: expected `BlockSparse.kv_count` [B|1, H|1, ceil(N / block_q)] with "
            "ceil(N / block_q) = 2 (N = 4, block_q = 3), got tensor [1, 1, 1]");
  const BlockSparse half{2, 2, at::zeros({1, 1, 2}, at::kInt), at::zeros({1, 1, 2, 1}, at::kInt),
                         at::zeros({1, 1, 2}, at::kInt), {}, {}};
  EXPECT_EQ(attend_error(q, kv, kv, half),
            "sparsescope::attend: expected a tensor for `BlockSparse.full_kv_index`, got none");
  EXPECT_EQ(attend_error(q, kv, kv, Dense{false, {}, at::ones({1, 1, 4, 5}, at::kBool)}),
            "sparsescope::attend: expected `Dense.mask` [B|1, H|1, N, M] with M = 6 (from `query`), "
            "got tensor [1, 1, 4, 5]");
  EXPECT_EQ(attend_error(q, kv, kv, Dense{false, {}, at::ones({1, 1, 4, 6}, at::kDouble)}),
            "sparsescope::attend: expected `Dense.mask` of dtype bool or float32, got float64 tensor "
            "[1, 1, 4, 6]");
  const at::Tensor sq = at::randn({1, 1, 12, 8});
  EXPECT_EQ(attend_error(sq, sq, sq, Neighborhood{{3, 4}, {2, 3}, {1, 2}, {}, {}}),
            "sparsescope::attend: expected `Neighborhood` kernel >= 1, dilation >= 1 and kernel * "
            "dilation <= grid extent on axis 1, got kernel 3, dilation 2, extent 4");
  EXPECT_EQ(attend_error(sq, sq, sq, Neighborhood{{3, 5}, {2, 3}, {}, {}, {}}),
            "sparsescope::attend: expected `Neighborhood.grid` to cover the N = 12 queries and M = 12 "
            "keys (self-attention), got 15 grid cells");
  const at::Tensor perm = at::arange(4).view({1, 1, 4});
  EXPECT_EQ(attend_error(q, kv, kv, sparsescope::permuted(perm, perm, Dense{})),
            "sparsescope::attend: `Permuted` without kv_perm permutes queries and keys alike and needs "
            "N = M, got N = 4, M = 6");
  EXPECT_EQ(attend_error(q, q, q, sparsescope::permuted(perm, perm, TopK{at::zeros({1, 1, 3, 1}, at::kLong), {}})),
            "sparsescope::attend: expected `Permuted.inner.TopK.index` [B|1, H|1, N, K] with N = 4 "
            "(from `query`), got tensor [1, 1, 3, 1]");
}

TEST(Checks, IndexValuesOnTheCpu) {
  at::Tensor index = at::zeros({1, 1, 4, 2}, at::kLong);
  index[0][0][2][1] = 9;
  EXPECT_EQ(attend_error(q, kv, kv, TopK{index, {}}),
            "sparsescope::attend: `TopK.index` holds key 9 at [0, 0, 2, 1], outside [-1, M = 6)");
  at::Tensor blocks = at::zeros({1, 1, 2, 2}, at::kInt);
  blocks[0][0][1][0] = 3;
  const at::Tensor count = at::full({1, 1, 2}, 1, at::kInt);
  EXPECT_EQ(attend_error(q, kv, kv, BlockSparse{2, 3, count, blocks, {}, {}, {}}),
            "sparsescope::attend: `BlockSparse.kv_index` lists key block 3 at [0, 0, 1, 0], outside "
            "[0, ceil(M / block_k) = 2) (M = 6, block_k = 3)");
  blocks[0][0][1][1] = 7;  // past the count: ignored
  blocks[0][0][1][0] = 1;
  EXPECT_NO_THROW(sparsescope::attend(q, kv, kv, BlockSparse{2, 3, count, blocks, {}, {}, {}}));
  EXPECT_EQ(attend_error(q, kv, kv, BlockSparse{2, 3, at::full({1, 1, 2}, 3, at::kInt), blocks, {}, {}, {}}),
            "sparsescope::attend: `BlockSparse.kv_count` holds 3 at [0, 0, 0], outside [0, W = 2]");
  const at::Tensor perm = at::tensor({0, 1, 1, 3}, at::kLong).view({1, 1, 4});
  EXPECT_EQ(attend_error(q, q, q, sparsescope::permuted(perm, perm, Dense{})),
            "sparsescope::attend: `Permuted.perm` is not a permutation of 0..3 in every (batch, head) row");
  const at::Tensor good = at::tensor({1, 2, 3, 0}, at::kLong).view({1, 1, 4});
  EXPECT_EQ(attend_error(q, q, q, sparsescope::permuted(good, good, Dense{})),
            "sparsescope::attend: `Permuted.inverse` is not the inverse of `Permuted.perm` "
            "(inverse[perm[a]] != a)");
}

TEST(Checks, EachOpHasItsOwnPrefix) {
  EXPECT_EQ(message_of([] { sparsescope::materialize(TopK{at::zeros({1, 1, 2, 1}, at::kInt), {}}, 2, 2); }),
            "sparsescope::materialize: expected `TopK.index` of dtype int64, got int32 tensor [1, 1, 2, 1]");
  EXPECT_EQ(message_of([] { sparsescope::from_block_mask(at::zeros({2, 2}, at::kBool), 4, 4); }),
            "sparsescope::from_block_mask: expected 4-D `blocks` [B|1, H|1, nq, nk], got 2-D tensor [2, 2]");
  const BlockSparse p{4, 4, at::ones({1, 1, 1}, at::kInt), at::full({1, 1, 1, 1}, 5, at::kInt), {}, {}, {}};
  EXPECT_EQ(message_of([&] { sparsescope::to_block_mask(p, 3); }),
            "sparsescope::to_block_mask: `BlockSparse.kv_index` lists key block 5 at [0, 0, 0, 0], "
            "outside [0, ceil(M / block_k) = 3) (M = 12, block_k = 4)");
  EXPECT_EQ(message_of([] { sparsescope::backend_choices(q, q, at::randn({1, 2, 4}), Dense{}); }),
            "sparsescope::backend_choices: expected 4-D `value` [B, H, M, Dv], got 3-D tensor [1, 2, 4]");
}

}  // namespace
