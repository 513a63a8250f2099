#pragma once
// Attention problems over every pattern, shared by the forward and gradient tests: odd sizes,
// M != N, rows without keys, causal, dilation, broadcast pattern tensors.
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "sparsescope/kernels/pattern.h"

namespace sparsescope::testing {

struct Case {
  std::string name;
  int64_t batch, heads, n, m, d, dv;
  std::function<Pattern()> make;  // uses the global generator: seed first
};

inline at::Tensor random_perm(int64_t batch, int64_t heads, int64_t n) {
  return at::rand({batch, heads, n}).argsort(/*stable=*/false, /*dim=*/-1, /*descending=*/false);
}

inline at::Tensor inverse_of(const at::Tensor& perm) {
  return perm.argsort(/*stable=*/false, /*dim=*/-1, /*descending=*/false);
}

// Random block lists of the FlexAttention layout, with some rows empty and entries past the count
// filled with garbage that must be ignored.
inline std::pair<at::Tensor, at::Tensor> random_blocks(int64_t batch, int64_t heads, int64_t rows,
                                                       int64_t k_blocks, int64_t width) {
  const at::Tensor index = at::rand({batch, heads, rows, k_blocks}).argsort(/*stable=*/false, /*dim=*/-1, /*descending=*/false).narrow(-1, 0, width);
  at::Tensor count = at::randint(0, width + 1, {batch, heads, rows}, at::kInt);
  count.select(2, 0).fill_(0);  // query block 0 sees nothing
  const at::Tensor past = at::arange(width, at::kInt) >= count.unsqueeze(-1);
  const at::Tensor garbage = at::randint(-50, 50, index.sizes(), at::kLong);
  return {count, index.masked_scatter(past, garbage.masked_select(past)).to(at::kInt)};
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline std::vector<Case> cases() {
  std::vector<Case> out;
  out.push_back({"dense", 2, 3, 17, 23, 8, 5, [] { return Pattern(Dense{}); }});
  out.push_back({"dense_scaled", 1, 2, 9, 9, 16, 16, [] { return Pattern(Dense{false, 0.37, {}}); }});
  out.push_back({"dense_causal_n_gt_m", 2, 2, 13, 7, 8, 8, [] { return Pattern(Dense{true, {}, {}}); }});
  out.push_back({"dense_causal_n_lt_m", 1, 3, 7, 13, 4, 6, [] { return Pattern(Dense{true, {}, {}}); }});
  out.push_back({"dense_bool_mask_empty_rows", 2, 3, 11, 14, 8, 8, [] {
    at::Tensor mask = at::rand({1, 3, 11, 14}) < 0.4;
    mask.select(2, 3).fill_(false);
    return Pattern(Dense{false, {}, mask});
  }});
  out.push_back({"dense_bias_causal", 2, 2, 10, 12, 8, 8, [] {
    at::Tensor bias = at::randn({2, 1, 10, 12});
    bias.masked_fill_(at::rand({2, 1, 10, 12}) < 0.2, -INFINITY);
    bias.select(2, 0).fill_(-INFINITY);  // a row whose every key is biased away
    return Pattern(Dense{true, {}, bias});
  }});
  out.push_back({"block_sparse_odd", 2, 3, 37, 29, 8, 7, [] {
    const auto [count, index] = random_blocks(2, 3, ceil_div(37, 8), ceil_div(29, 6), 4);
    return Pattern(BlockSparse{8, 6, count, index, {}, {}, {}});
  }});
  out.push_back({"block_sparse_full_broadcast", 2, 3, 33, 40, 8, 8, [] {
    const auto [count, index] = random_blocks(1, 3, ceil_div(33, 16), ceil_div(40, 8), 3);
    const auto [full_count, full_index] = random_blocks(2, 1, ceil_div(33, 16), ceil_div(40, 8), 5);
    return Pattern(BlockSparse{16, 8, count, index, full_count, full_index, 0.2});
  }});
  out.push_back({"block_sparse_block_over_n", 1, 2, 20, 50, 8, 8, [] {
    // One query block, wider than N, over two key blocks of which the second is short.
    const at::Tensor count = at::tensor({1, 2}, at::kInt).view({1, 2, 1});
    const at::Tensor index = at::tensor({1, 0, 0, 1}, at::kInt).view({1, 2, 1, 2});
    return Pattern(BlockSparse{64, 32, count, index, {}, {}, {}});
  }});
  out.push_back({"topk_padding_duplicates", 2, 3, 19, 23, 8, 8, [] {
    at::Tensor index = at::randint(0, 23, {2, 1, 19, 6}, at::kLong);
    index.masked_fill_(at::rand({2, 1, 19, 6}) < 0.25, -1);
    index.select(2, 5).fill_(-1);                  // a query without keys
    index.select(2, 7).copy_(index.select(2, 7).select(-1, 0).unsqueeze(-1).expand({2, 1, 6}));
    return Pattern(TopK{index, {}});
  }});
  out.push_back({"topk_k_over_m", 1, 2, 9, 5, 4, 4, [] {
    return Pattern(TopK{at::randint(0, 5, {1, 2, 9, 11}, at::kLong), {}});
  }});
  out.push_back({"neighborhood_1d", 1, 2, 21, 21, 8, 8, [] {
    return Pattern(Neighborhood{{21}, {5}, {}, {}, {}});
  }});
  out.push_back({"neighborhood_1d_dilated_causal_even", 2, 1, 23, 23, 8, 8, [] {
    return Pattern(Neighborhood{{23}, {4}, {3}, {true}, {}});
  }});
  out.push_back({"neighborhood_2d_dilated", 1, 2, 63, 63, 8, 8, [] {
    return Pattern(Neighborhood{{7, 9}, {3, 4}, {2, 1}, {}, {}});
  }});
  out.push_back({"neighborhood_2d_causal_axis", 2, 2, 30, 30, 8, 8, [] {
    return Pattern(Neighborhood{{6, 5}, {3, 3}, {}, {true, false}, {}});
  }});
  out.push_back({"neighborhood_3d", 1, 2, 60, 60, 8, 8, [] {
    return Pattern(Neighborhood{{3, 4, 5}, {2, 3, 2}, {1, 1, 2}, {}, {}});
  }});
  out.push_back({"permuted_topk", 2, 3, 15, 15, 8, 8, [] {
    const at::Tensor perm = random_perm(2, 3, 15);
    at::Tensor index = at::randint(-1, 15, {2, 3, 15, 4}, at::kLong);
    return Pattern(permuted(perm, inverse_of(perm), TopK{index, {}}));
  }});
  out.push_back({"permuted_kv_block_sparse", 2, 2, 19, 26, 8, 8, [] {
    const at::Tensor perm = random_perm(2, 2, 19);
    const auto [count, index] = random_blocks(2, 2, ceil_div(19, 4), ceil_div(26, 5), 3);
    return Pattern(permuted(perm, inverse_of(perm), BlockSparse{4, 5, count, index, {}, {}, {}},
                            random_perm(1, 1, 26)));
  }});
  out.push_back({"permuted_dense_causal_scaled", 1, 2, 12, 12, 8, 8, [] {
    const at::Tensor perm = random_perm(1, 1, 12);
    return Pattern(permuted(perm, inverse_of(perm), Dense{true, 0.3, {}}));
  }});
  out.push_back({"permuted_neighborhood", 1, 2, 24, 24, 8, 8, [] {
    const at::Tensor perm = random_perm(1, 2, 24);
    return Pattern(permuted(perm, inverse_of(perm), Neighborhood{{4, 6}, {3, 3}, {}, {}, {}}));
  }});
  return out;
}

/// The pattern for inputs of `dtype`: a floating Dense mask (an additive bias) takes their dtype.
inline Pattern for_dtype(Pattern pattern, at::ScalarType dtype) {
  if (auto* p = std::get_if<Dense>(&pattern); p && p->mask.defined() && p->mask.is_floating_point())
    p->mask = p->mask.to(dtype);
  return pattern;
}

inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

/// The additive bias of a Dense pattern, which the oracle adds before masking.
inline at::Tensor bias_of(const Pattern& pattern) {
  if (const auto* p = std::get_if<Dense>(&pattern))
    return p->mask.defined() && p->mask.is_floating_point() ? p->mask : at::Tensor();
  return {};
}

}  // namespace sparsescope::testing
