// The torch.ops.sparsescope.* registrations, called through the dispatcher as Python calls them.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>

#include <optional>
#include <tuple>

#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"

namespace {

using Pair = std::tuple<at::Tensor, at::Tensor>;

TEST(Ops, TopKAttentionMatchesAttend) {
  const auto op = c10::Dispatcher::singleton()
                      .findSchemaOrThrow("sparsescope::topk_attention", "")
                      .typed<Pair(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                  const at::Tensor&, std::optional<double>)>();
  at::manual_seed(0);
  const at::Tensor q = at::randn({2, 2, 5, 8}), k = at::randn({2, 2, 7, 8}), v = at::randn({2, 2, 7, 8});
  const at::Tensor index = at::randint(-1, 7, {2, 1, 5, 3}, at::kLong);
  const auto [out, lse] = op.call(q, k, v, index, 0.5);
  const sparsescope::AttendResult want = sparsescope::attend_lse(q, k, v, sparsescope::TopK{index, 0.5});
  EXPECT_TRUE(out.equal(want.out));
  EXPECT_TRUE(lse.equal(want.lse));
}

TEST(Ops, ErrorsCarryTheOpsPrefix) {
  const auto op = c10::Dispatcher::singleton()
                      .findSchemaOrThrow("sparsescope::dense_attention", "")
                      .typed<Pair(const at::Tensor&, const at::Tensor&, const at::Tensor&, bool,
                                  std::optional<double>, const std::optional<at::Tensor>&)>();
  const at::Tensor bad = at::randn({2, 5, 8});
  try {
    op.call(bad, bad, bad, false, std::nullopt, std::nullopt);
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("sparsescope::dense_attention: expected 4-D `query` [B, H, N, D], "
                                         "got 3-D tensor [2, 5, 8]"),
              std::string::npos)
        << e.what();
  }
}

TEST(Ops, AllAreRegistered) {
  for (const char* name : {"dense_attention", "block_sparse_attention", "topk_attention",
                           "neighborhood_attention", "permuted_block_sparse_attention", "to_block_mask",
                           "from_block_mask"})
    EXPECT_TRUE(c10::Dispatcher::singleton().findSchema({std::string("sparsescope::") + name, ""}).has_value())
        << name;
}

}  // namespace
