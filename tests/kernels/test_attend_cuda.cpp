// The fused CUDA kernels against the CPU reference in float32, on fresh random inputs of odd sizes,
// with the kernels' outputs allocated over poisoned (NaN) memory. Skipped without a CUDA device.
// The Small suite is what compute-sanitizer runs (scripts/gpu/run.sh).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "cases.h"
#include "oracle.h"
#include "sparsescope/kernels/attend.h"

namespace {

using sparsescope::AttendResult;
using sparsescope::BlockSparse;
using sparsescope::Dense;
using sparsescope::Neighborhood;
using sparsescope::Pattern;
using sparsescope::TopK;
using sparsescope::testing::ceil_div;
using sparsescope::testing::expect_lse_near;
using sparsescope::testing::random_blocks;

struct GpuCase {
  std::string name;
  int64_t batch, heads, n, m;
  std::function<Pattern()> make;  // on the CPU, from the global generator
  std::string backend;            // the backend attend() must pick on the GPU
};

void PrintTo(const GpuCase& c, std::ostream* os) { *os << c.name; }

at::Tensor to(const at::Tensor& t, at::Device device) { return t.defined() ? t.to(device) : t; }

Pattern to_device(const Pattern& pattern, at::Device device) {
  if (const auto* p = std::get_if<Dense>(&pattern)) return Dense{p->causal, p->scale, to(p->mask, device)};
  if (const auto* p = std::get_if<BlockSparse>(&pattern))
    return BlockSparse{p->block_q, p->block_k, to(p->kv_count, device), to(p->kv_index, device),
                       to(p->full_kv_count, device), to(p->full_kv_index, device), p->scale};
  if (const auto* p = std::get_if<TopK>(&pattern)) return TopK{to(p->index, device), p->scale};
  if (std::holds_alternative<Neighborhood>(pattern)) return pattern;  // no tensors
  const auto& p = std::get<sparsescope::Permuted>(pattern);
  return sparsescope::permuted(to(p.perm, device), to(p.inverse, device), to_device(*p.inner, device),
                               to(p.kv_perm, device));
}

// The pattern with a Dense bias (also inside a Permuted) in `dtype` (attend() takes biases of the
// query dtype).
Pattern bias_as(const Pattern& pattern, at::ScalarType dtype) {
  if (const auto* p = std::get_if<sparsescope::Permuted>(&pattern))
    return sparsescope::permuted(p->perm, p->inverse, bias_as(*p->inner, dtype), p->kv_perm);
  const auto* p = std::get_if<Dense>(&pattern);
  if (!p || !p->mask.defined() || p->mask.scalar_type() == at::kBool) return pattern;
  return Dense{p->causal, p->scale, p->mask.to(dtype)};
}

// A bias [batch, heads, n, m] with dropped keys (-inf) and a row without any key.
Pattern dense_bias(int64_t batch, int64_t heads, int64_t n, int64_t m, bool causal) {
  at::Tensor bias = at::randn({batch, heads, n, m}) * 2;
  bias.masked_fill_(at::rand({batch, heads, n, m}) < 0.2, -INFINITY);
  bias.select(2, n / 2).fill_(-INFINITY);
  return Dense{causal, {}, bias};
}

// A bool mask shared by the heads, with a row without any key.
Pattern dense_bool_mask(int64_t batch, int64_t n, int64_t m) {
  at::Tensor keep = at::rand({batch, 1, n, m}) < 0.6;
  keep.select(2, 1).fill_(false);
  return Dense{false, {}, keep};
}

Pattern block_sparse(int64_t batch, int64_t heads, int64_t n, int64_t m, int64_t bq, int64_t bk,
                     bool full) {
  const int64_t rows = ceil_div(n, bq), cols = ceil_div(m, bk);
  const auto [count, index] = random_blocks(batch, heads, rows, cols, std::min<int64_t>(cols, 4));
  if (!full) return BlockSparse{bq, bk, count, index, {}, {}, {}};
  // Full blocks shared over heads, overlapping the partial ones: repeated blocks count once.
  const auto [full_count, full_index] = random_blocks(batch, 1, rows, cols, std::min<int64_t>(cols, 3));
  return BlockSparse{bq, bk, count, index, full_count, full_index, {}};
}

Pattern topk(int64_t batch, int64_t heads, int64_t n, int64_t m, int64_t k) {
  at::Tensor index = at::randint(0, m, {batch, heads, n, k}, at::kLong);
  index.masked_fill_(at::rand({batch, heads, n, k}) < 0.2, -1);
  index.select(2, 1).fill_(-1);  // a query without keys
  if (k > 1) index.select(2, 2).narrow(-1, 1, k - 1).copy_(index.select(2, 2).narrow(-1, 0, 1).expand({batch, heads, k - 1}));
  return TopK{index, {}};
}

// `inner` behind a permutation of the queries per (batch, head) and one of the keys shared by the
// heads.
Pattern permuted_with_kv(int64_t batch, int64_t heads, int64_t n, int64_t m, Pattern inner) {
  const at::Tensor perm = sparsescope::testing::random_perm(batch, heads, n);
  return sparsescope::permuted(perm, sparsescope::testing::inverse_of(perm), std::move(inner),
                               sparsescope::testing::random_perm(batch, 1, m));
}

std::vector<GpuCase> small_cases() {
  return {
      {"dense", 1, 2, 5, 7, [] { return Pattern(Dense{false, 0.3, {}}); }, "cuda_dense"},
      {"dense_causal", 2, 1, 70, 45, [] { return Pattern(Dense{true, {}, {}}); }, "cuda_dense"},
      {"block_sparse", 1, 2, 200, 150, [] { return block_sparse(1, 2, 200, 150, 128, 64, true); },
       "cuda_block_sparse"},
      {"topk", 1, 2, 9, 40, [] { return topk(1, 2, 9, 40, 37); }, "cuda_topk"},
      {"dense_bias", 2, 2, 33, 140, [] { return dense_bias(2, 2, 33, 140, false); }, "cuda_dense"},
      // M a multiple of 8: the bias is staged in shared memory per key tile.
      {"dense_bias_staged", 2, 2, 130, 256, [] { return dense_bias(2, 2, 130, 256, true); }, "cuda_dense"},
      {"dense_bool_mask", 1, 2, 70, 90, [] { return dense_bool_mask(1, 70, 90); }, "cuda_dense"},
      {"neighborhood_2d", 1, 2, 156, 156, [] { return Pattern(Neighborhood{{12, 13}, {5, 3}, {}, {}, {}}); },
       "cuda_neighborhood"},
      // Queries and keys permuted apart (keys' permutation shared over the heads), M != N.
      {"permuted_dense_causal", 1, 2, 70, 90, [] { return permuted_with_kv(1, 2, 70, 90, Dense{true, {}, {}}); },
       "cuda_permuted"},
  };
}

std::vector<GpuCase> odd_cases() {
  return {
      {"dense", 2, 3, 300, 333, [] { return Pattern(Dense{}); }, "cuda_dense"},
      {"dense_causal_square", 1, 2, 257, 257, [] { return Pattern(Dense{true, {}, {}}); }, "cuda_dense"},
      {"dense_causal_n_gt_m", 2, 2, 333, 200, [] { return Pattern(Dense{true, {}, {}}); }, "cuda_dense"},
      {"dense_causal_n_lt_m", 1, 3, 200, 333, [] { return Pattern(Dense{true, 0.2, {}}); }, "cuda_dense"},
      // Many key tiles: the Hopper kernel's stages wrap around several times.
      {"dense_causal_long", 1, 2, 1100, 1100, [] { return Pattern(Dense{true, {}, {}}); }, "cuda_dense"},
      {"block_sparse_128", 2, 3, 700, 650, [] { return block_sparse(2, 3, 700, 650, 128, 128, true); },
       "cuda_block_sparse"},
      {"block_sparse_256x64_partial_only", 1, 2, 600, 500,
       [] { return block_sparse(1, 2, 600, 500, 256, 64, false); }, "cuda_block_sparse"},
      {"block_sparse_repeated_blocks", 1, 1, 256, 384, [] {
         // Row 0 lists block 1 three times; row 1 lists block 2 as partial and as full.
         const at::Tensor count = at::tensor({3, 1}, at::kInt).view({1, 1, 2});
         const at::Tensor index = at::tensor({1, 1, 1, 2, 0, 0}, at::kInt).view({1, 1, 2, 3});
         const at::Tensor full_count = at::tensor({0, 2}, at::kInt).view({1, 1, 2});
         const at::Tensor full_index = at::tensor({0, 0, 2, 0}, at::kInt).view({1, 1, 2, 2});
         return Pattern(BlockSparse{128, 128, count, index, full_count, full_index, {}});
       }, "cuda_block_sparse"},
      {"dense_bias_causal", 1, 3, 300, 333, [] { return dense_bias(1, 3, 300, 333, true); }, "cuda_dense"},
      {"dense_bias_broadcast", 2, 2, 257, 200, [] { return dense_bias(1, 1, 257, 200, false); }, "cuda_dense"},
      {"dense_bool_mask", 2, 3, 300, 333, [] { return dense_bool_mask(2, 300, 333); }, "cuda_dense"},
      {"topk", 2, 3, 300, 400, [] { return topk(2, 1, 300, 400, 37); }, "cuda_topk"},
      {"topk_k_over_m", 1, 2, 50, 20, [] { return topk(1, 2, 50, 20, 70); }, "cuda_topk"},
      {"topk_long_lists", 1, 2, 64, 900, [] { return topk(1, 2, 64, 900, 300); }, "cuda_topk"},
      // A quarter of the keys: the tensor-core union kernel.
      {"topk_quarter", 2, 3, 196, 197, [] { return topk(2, 3, 196, 197, 50); }, "cuda_topk"},
      {"permuted_topk_quarter", 1, 2, 200, 150, [] { return permuted_with_kv(1, 2, 200, 150, topk(1, 2, 200, 150, 40)); },
       "cuda_permuted"},
      {"neighborhood_1d_dilated", 2, 3, 700, 700, [] { return Pattern(Neighborhood{{700}, {13}, {3}, {}, {}}); },
       "cuda_neighborhood"},
      // Dilation 100: a window row's keys lie farther apart than a key tile.
      {"neighborhood_1d_dilation_past_a_tile", 1, 1, 400, 400,
       [] { return Pattern(Neighborhood{{400}, {3}, {100}, {}, {}}); }, "cuda_neighborhood"},
      {"neighborhood_2d_causal_dilated", 1, 2, 1110, 1110,
       [] { return Pattern(Neighborhood{{30, 37}, {7, 5}, {2, 3}, {true, false}, 0.2}); }, "cuda_neighborhood"},
      {"neighborhood_3d", 1, 2, 594, 594,
       [] { return Pattern(Neighborhood{{6, 9, 11}, {3, 5, 3}, {1, 1, 2}, {false, false, true}, {}}); },
       "cuda_neighborhood"},
      {"permuted_block_sparse", 1, 2, 300, 300, [] {
         const at::Tensor perm = sparsescope::testing::random_perm(1, 2, 300);
         return Pattern(sparsescope::permuted(perm, sparsescope::testing::inverse_of(perm),
                                              block_sparse(1, 2, 300, 300, 128, 64, true)));
       }, "cuda_permuted"},
      {"permuted_block_sparse_kv", 2, 3, 333, 400,
       [] { return permuted_with_kv(2, 3, 333, 400, block_sparse(2, 3, 333, 400, 128, 128, true)); },
       "cuda_permuted"},
      {"permuted_neighborhood", 1, 2, 300, 300, [] {
         const at::Tensor perm = sparsescope::testing::random_perm(1, 2, 300);
         return Pattern(sparsescope::permuted(perm, sparsescope::testing::inverse_of(perm),
                                              Neighborhood{{15, 20}, {3, 5}, {}, {}, {}}));
       }, "cuda_permuted"},
      {"permuted_topk", 2, 3, 300, 400, [] { return permuted_with_kv(2, 3, 300, 400, topk(2, 3, 300, 400, 37)); },
       "cuda_permuted"},
      {"permuted_dense_bias", 2, 2, 257, 200,
       [] { return permuted_with_kv(2, 2, 257, 200, dense_bias(2, 2, 257, 200, false)); }, "cuda_permuted"},
  };
}

double output_tolerance(at::ScalarType dtype) { return dtype == at::kHalf ? 5e-3 : 2e-2; }

std::string first_usable(const std::vector<sparsescope::BackendChoice>& choices) {
  for (const auto& c : choices)
    if (c.usable) return c.name;
  return "none";
}

// Frees NaN-filled blocks of the outputs' sizes, so that the caching allocator hands them to the
// kernel's outputs: a row the kernel forgets to write stays NaN.
void poison(int64_t batch, int64_t heads, int64_t n, int64_t d, at::ScalarType dtype) {
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  at::full({batch, heads, n, d}, std::numeric_limits<double>::quiet_NaN(), cuda.dtype(dtype));
  at::full({batch, heads, n}, std::numeric_limits<double>::quiet_NaN(), cuda.dtype(at::kFloat));
}

using Param = std::tuple<GpuCase, at::ScalarType, int64_t>;

class CudaAttend : public ::testing::TestWithParam<Param> {};

// The same cases with the Hopper forward asked for (SPARSESCOPE_WGMMA=1): on an sm_90 device it
// runs the Dense and BlockSparse ones; elsewhere this is a second run of the mma.sync kernels.
class CudaAttendWgmma : public CudaAttend {
 protected:
  void SetUp() override { setenv("SPARSESCOPE_WGMMA", "1", 1); }
  void TearDown() override { unsetenv("SPARSESCOPE_WGMMA"); }
};

void expect_matches_reference(const Param& param) {
  const auto& [c, dtype, d] = param;
  at::manual_seed(17);
  const Pattern pattern = bias_as(c.make(), dtype);  // a bias as the kernel reads it, rounded to the dtype
  const at::Tensor q = at::randn({c.batch, c.heads, c.n, d}).to(dtype);
  const at::Tensor k = at::randn({c.batch, c.heads, c.m, d}).to(dtype);
  const at::Tensor v = at::randn({c.batch, c.heads, c.m, d}).to(dtype);
  const AttendResult want = sparsescope::attend_lse(q.to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat),
                                                    bias_as(pattern, at::kFloat));

  const Pattern on_gpu = to_device(pattern, at::kCUDA);
  const at::Tensor gq = q.cuda(), gk = k.cuda(), gv = v.cuda();
  EXPECT_EQ(first_usable(sparsescope::backend_choices(gq, gk, gv, on_gpu)), c.backend);
  poison(c.batch, c.heads, c.n, d, dtype);
  const AttendResult got = sparsescope::attend_lse(gq, gk, gv, on_gpu);
  ASSERT_EQ(got.out.scalar_type(), dtype);
  ASSERT_EQ(got.lse.scalar_type(), at::kFloat);
  const at::Tensor out = got.out.cpu().to(at::kFloat);
  EXPECT_FALSE(out.isnan().any().item<bool>());
  EXPECT_LE((out - want.out).abs().max().item<double>(), output_tolerance(dtype));
  expect_lse_near(got.lse.cpu(), want.lse, 2e-3);
  // Queries without keys: exactly 0 and -inf.
  const at::Tensor empty = want.lse.isneginf();
  EXPECT_EQ(out.masked_select(empty.unsqueeze(-1)).abs().sum().item<double>(), 0.0);
}

TEST_P(CudaAttend, MatchesTheFloat32Reference) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  expect_matches_reference(GetParam());
}

TEST_P(CudaAttendWgmma, MatchesTheFloat32Reference) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  expect_matches_reference(GetParam());
}

std::vector<Param> params(const std::vector<GpuCase>& cases) {
  std::vector<Param> out;
  for (const GpuCase& c : cases)
    for (at::ScalarType t : {at::kHalf, at::kBFloat16})
      for (int64_t d : {64, 128}) out.emplace_back(c, t, d);
  return out;
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  const auto& [c, dtype, d] = info.param;
  return c.name + (dtype == at::kHalf ? "_fp16" : "_bf16") + "_d" + std::to_string(d);
}

INSTANTIATE_TEST_SUITE_P(Small, CudaAttend, ::testing::ValuesIn(params(small_cases())), param_name);
INSTANTIATE_TEST_SUITE_P(Odd, CudaAttend, ::testing::ValuesIn(params(odd_cases())), param_name);
INSTANTIATE_TEST_SUITE_P(SmallWgmma, CudaAttendWgmma, ::testing::ValuesIn(params(small_cases())), param_name);
INSTANTIATE_TEST_SUITE_P(OddWgmma, CudaAttendWgmma, ::testing::ValuesIn(params(odd_cases())), param_name);

// q, k, v as views of one packed projection [B, N, 3, H, D] (the ViT layout): strided rows, no copy.
TEST(CudaAttendLayout, StridedViewsOfAPackedProjection) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  at::manual_seed(5);
  const int64_t batch = 2, n = 197, heads = 3, d = 64;
  const at::Tensor qkv = at::randn({batch, n, 3, heads, d}).to(at::kBFloat16);
  const at::Tensor packed = qkv.cuda().permute({2, 0, 3, 1, 4});  // [3, B, H, N, D]
  const at::Tensor q = packed[0], k = packed[1], v = packed[2];
  ASSERT_FALSE(q.is_contiguous());
  EXPECT_EQ(first_usable(sparsescope::backend_choices(q, k, v, Dense{})), "cuda_dense");
  const at::Tensor got = sparsescope::attend(q, k, v, Dense{}).cpu().to(at::kFloat);
  const at::Tensor want = sparsescope::attend(q.cpu().to(at::kFloat), k.cpu().to(at::kFloat),
                                              v.cpu().to(at::kFloat), Dense{});
  EXPECT_LE((got - want).abs().max().item<double>(), output_tolerance(at::kBFloat16));
}

TEST(CudaAttendLayout, UnsupportedCallsFallBackAndSayWhy) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  const at::Tensor q32 = at::randn({1, 2, 10, 64}, at::kCUDA);
  const auto choices = sparsescope::backend_choices(q32, q32, q32, Dense{});
  EXPECT_EQ(choices[0].name, "cuda_dense");
  EXPECT_EQ(choices[0].why_not, "dtype Float, the kernels take float16 or bfloat16");
  EXPECT_EQ(first_usable(choices), "reference");
  const at::Tensor q48 = at::randn({1, 2, 10, 48}, at::kCUDA).to(at::kHalf);
  EXPECT_EQ(sparsescope::backend_choices(q48, q48, q48, Dense{})[0].why_not,
            "head dims D = 48, Dv = 48, the kernels take D = Dv = 64 or 128");
}

// Grouped-query attention: K/V with fewer heads than q, each K/V head serving consecutive query
// heads, in the fused kernels and through their backward.
TEST(CudaAttendGqa, KvHeadsServeGroupsOfQueryHeads) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  at::manual_seed(29);
  const int64_t batch = 2, heads = 6, n = 150, m = 170, d = 64;
  const std::vector<std::pair<Pattern, std::string>> patterns = {
      {Dense{true, {}, {}}, "cuda_dense"},
      {block_sparse(batch, heads, n, m, 128, 64, true), "cuda_block_sparse"},
      {topk(batch, heads, n, m, 30), "cuda_topk"},
  };
  for (const int64_t kv_heads : {1, 2, 3}) {
    for (const auto& [pattern, backend] : patterns) {
      const at::Tensor q = at::randn({batch, heads, n, d}).to(at::kBFloat16);
      const at::Tensor k = at::randn({batch, kv_heads, m, d}).to(at::kBFloat16);
      const at::Tensor v = at::randn({batch, kv_heads, m, d}).to(at::kBFloat16);
      const Pattern on_gpu = to_device(pattern, at::kCUDA);
      std::vector<at::Tensor> gpu = {q.cuda().requires_grad_(true), k.cuda().requires_grad_(true),
                                     v.cuda().requires_grad_(true)};
      std::vector<at::Tensor> cpu = {q.to(at::kFloat).requires_grad_(true), k.to(at::kFloat).requires_grad_(true),
                                     v.to(at::kFloat).requires_grad_(true)};
      EXPECT_EQ(first_usable(sparsescope::backend_choices(gpu[0], gpu[1], gpu[2], on_gpu)), backend);
      const at::Tensor got = sparsescope::attend(gpu[0], gpu[1], gpu[2], on_gpu);
      const at::Tensor want = sparsescope::attend(cpu[0], cpu[1], cpu[2], pattern);
      const std::string what = backend + " with " + std::to_string(kv_heads) + " K/V heads";
      EXPECT_LE((got.cpu().to(at::kFloat) - want).abs().max().item<double>(), output_tolerance(at::kBFloat16)) << what;
      const at::Tensor g = at::randn({batch, heads, n, d});
      (got.to(at::kFloat) * g.cuda()).sum().backward();
      (want * g).sum().backward();
      for (size_t i = 0; i < 3; ++i) {
        ASSERT_EQ(gpu[i].grad().sizes(), cpu[i].grad().sizes()) << what;
        const double scale = std::max(1.0, cpu[i].grad().abs().max().item<double>());
        EXPECT_LE((gpu[i].grad().cpu().to(at::kFloat) - cpu[i].grad()).abs().max().item<double>(), 2e-2 * scale)
            << what << ", input " << i;
      }
    }
  }
}

// Training through attend() on the GPU: the fused forward records a backward (the fused backward
// kernel for Dense and BlockSparse, Permuted over either; the reference's otherwise); gradients of
// out and LSE match the float32 reference's on the CPU.
class CudaGradient : public ::testing::TestWithParam<Param> {};

TEST_P(CudaGradient, MatchesTheFloat32ReferenceGradients) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  const auto& [c, dtype, d] = GetParam();
  at::manual_seed(23);
  const Pattern pattern = c.make();
  const at::Tensor q = at::randn({c.batch, c.heads, c.n, d}).to(dtype);
  const at::Tensor k = at::randn({c.batch, c.heads, c.m, d}).to(dtype);
  const at::Tensor v = at::randn({c.batch, c.heads, c.m, d}).to(dtype);
  const at::Tensor g_out = at::randn({c.batch, c.heads, c.n, d});
  const at::Tensor g_lse = at::randn({c.batch, c.heads, c.n});

  auto grads = [&](at::Device device, at::ScalarType type) {
    std::vector<at::Tensor> leaves = {q.to(device, type).requires_grad_(true),
                                      k.to(device, type).requires_grad_(true),
                                      v.to(device, type).requires_grad_(true)};
    const Pattern p = to_device(pattern, device);
    if (device.is_cuda()) {
      EXPECT_EQ(first_usable(sparsescope::backend_choices(leaves[0], leaves[1], leaves[2], p)), c.backend);
    }
    const AttendResult r = sparsescope::attend_lse(leaves[0], leaves[1], leaves[2], p);
    const at::Tensor lse = at::where(r.lse.isfinite(), r.lse, at::zeros_like(r.lse));
    ((r.out.to(at::kFloat) * g_out.to(device)).sum() + (lse * g_lse.to(device)).sum()).backward();
    std::vector<at::Tensor> out;
    for (const auto& t : leaves) out.push_back(t.grad().cpu().to(at::kFloat));
    return out;
  };
  const auto got = grads(at::kCUDA, dtype);
  const auto want = grads(at::kCPU, at::kFloat);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_FALSE(got[i].isnan().any().item<bool>()) << "input " << i;
    const double scale = std::max(1.0, want[i].abs().max().item<double>());
    EXPECT_LE((got[i] - want[i]).abs().max().item<double>(), 2e-2 * scale) << "input " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Patterns, CudaGradient, ::testing::ValuesIn(params(std::vector<GpuCase>{
    {"dense", 2, 2, 150, 130, [] { return Pattern(Dense{}); }, "cuda_dense"},
    {"dense_causal", 2, 2, 150, 130, [] { return Pattern(Dense{true, {}, {}}); }, "cuda_dense"},
    {"dense_causal_n_lt_m", 1, 2, 100, 333, [] { return Pattern(Dense{true, 0.2, {}}); }, "cuda_dense"},
    {"block_sparse", 1, 2, 300, 260, [] { return block_sparse(1, 2, 300, 260, 128, 64, true); },
     "cuda_block_sparse"},
    {"block_sparse_256x128_partial_only", 2, 2, 600, 500,
     [] { return block_sparse(2, 2, 600, 500, 256, 128, false); }, "cuda_block_sparse"},
    {"topk", 1, 2, 40, 90, [] { return topk(1, 2, 40, 90, 20); }, "cuda_topk"},
    {"neighborhood_2d", 1, 2, 300, 300, [] { return Pattern(Neighborhood{{20, 15}, {5, 7}, {}, {}, {}}); },
     "cuda_neighborhood"},
    {"permuted_dense_causal", 1, 2, 70, 90, [] { return permuted_with_kv(1, 2, 70, 90, Dense{true, {}, {}}); },
     "cuda_permuted"},
    {"permuted_block_sparse", 1, 2, 300, 260,
     [] { return permuted_with_kv(1, 2, 300, 260, block_sparse(1, 2, 300, 260, 128, 64, true)); }, "cuda_permuted"},
    {"permuted_topk", 1, 2, 40, 90, [] { return permuted_with_kv(1, 2, 40, 90, topk(1, 2, 40, 90, 20)); },
     "cuda_permuted"},
})), param_name);

// Under torch.use_deterministic_algorithms the fused backward sums dQ in a pass per query tile
// instead of with atomics: two backward passes give bitwise equal gradients, and they match the
// float32 reference's.
TEST(CudaAttendDeterministic, GradientsAreBitwiseReproducible) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  struct Restore {
    bool was = at::globalContext().deterministicAlgorithms();
    ~Restore() { at::globalContext().setDeterministicAlgorithms(was, /*warn_only=*/false); }
  } restore;
  at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
  at::manual_seed(31);
  const int64_t n = 300, m = 260;
  const std::vector<std::pair<std::string, Pattern>> patterns = {
      {"dense_causal", Dense{true, {}, {}}},
      {"block_sparse", block_sparse(1, 2, n, m, 128, 64, true)},
      {"permuted_dense", permuted_with_kv(1, 2, n, m, Dense{})},
  };
  for (const int64_t d : {64, 128}) {
    for (const auto& [name, pattern] : patterns) {
      const std::string what = name + " D " + std::to_string(d);
      const at::Tensor q = at::randn({1, 2, n, d}).to(at::kBFloat16), k = at::randn({1, 2, m, d}).to(at::kBFloat16),
                       v = at::randn({1, 2, m, d}).to(at::kBFloat16), g = at::randn({1, 2, n, d});
      auto grads = [&](at::Device device, at::ScalarType type) {
        std::vector<at::Tensor> leaves;
        for (const at::Tensor& t : {q, k, v}) leaves.push_back(t.to(device, type).requires_grad_(true));
        const at::Tensor out = sparsescope::attend(leaves[0], leaves[1], leaves[2], to_device(pattern, device));
        (out.to(at::kFloat) * g.to(device)).sum().backward();
        std::vector<at::Tensor> result;
        for (const auto& t : leaves) result.push_back(t.grad().cpu().to(at::kFloat));
        return result;
      };
      const auto first = grads(at::kCUDA, at::kBFloat16), second = grads(at::kCUDA, at::kBFloat16);
      const auto want = grads(at::kCPU, at::kFloat);
      for (size_t i = 0; i < 3; ++i) {
        EXPECT_TRUE(first[i].equal(second[i])) << what << ", input " << i;
        const double scale = std::max(1.0, want[i].abs().max().item<double>());
        EXPECT_LE((first[i] - want[i]).abs().max().item<double>(), 2e-2 * scale) << what << ", input " << i;
      }
    }
  }
}

// A learnable bias (SwinBERT's soft mask) runs the fused forward, also behind a permutation; its
// gradient, and those of q, k and v, match the float32 reference's on the CPU.
TEST(CudaAttendBias, GradientsFlowIntoTheBias) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  at::manual_seed(29);
  const int64_t b = 1, h = 2, n = 150, m = 170, d = 64;
  const at::Tensor bias = std::get<Dense>(dense_bias(b, h, n, m, true)).mask.to(at::kBFloat16);
  const at::Tensor q = at::randn({b, h, n, d}).to(at::kBFloat16), k = at::randn({b, h, m, d}).to(at::kBFloat16),
                   v = at::randn({b, h, m, d}).to(at::kBFloat16);
  const at::Tensor g_out = at::randn({b, h, n, d});
  const at::Tensor perm = sparsescope::testing::random_perm(b, h, n), kv_perm = sparsescope::testing::random_perm(b, 1, m);
  for (const bool permute : {false, true}) {
    auto grads = [&](at::Device device, at::ScalarType dtype) {
      std::vector<at::Tensor> leaves;
      for (const at::Tensor& t : {q, k, v, bias}) leaves.push_back(t.to(device, dtype).requires_grad_(true));
      const Pattern dense = Dense{true, {}, leaves[3]};
      const Pattern pattern = permute ? Pattern(sparsescope::permuted(perm.to(device), sparsescope::testing::inverse_of(perm).to(device),
                                                                      dense, kv_perm.to(device)))
                                      : dense;
      if (device.is_cuda()) {
        EXPECT_EQ(first_usable(sparsescope::backend_choices(leaves[0], leaves[1], leaves[2], pattern)),
                  permute ? "cuda_permuted" : "cuda_dense");
      }
      const at::Tensor out = sparsescope::attend(leaves[0], leaves[1], leaves[2], pattern);
      (out.to(at::kFloat) * g_out.to(device)).sum().backward();
      std::vector<at::Tensor> g;
      for (const auto& t : leaves) g.push_back(t.grad().cpu().to(at::kFloat).nan_to_num(0, 0, 0));
      return g;
    };
    const auto got = grads(at::kCUDA, at::kBFloat16);
    const auto want = grads(at::kCPU, at::kFloat);
    for (size_t i = 0; i < got.size(); ++i) {
      const double scale = std::max(1.0, want[i].abs().max().item<double>());
      EXPECT_LE((got[i] - want[i]).abs().max().item<double>(), 2e-2 * scale) << "input " << i << ", permuted " << permute;
    }
    EXPECT_GT(want[3].abs().sum().item<double>(), 0.0) << "the bias has a gradient";
  }
}

}  // namespace
