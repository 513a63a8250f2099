// The dynamic depthwise convolution: the reference against the definition written as loops in
// float64, and on a GPU the fused kernels (forward, and both gradients) against the reference and
// its autograd gradients in float64, for float32, float16 and bfloat16, odd sizes and group counts.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <tuple>

#include "sparsescope/kernels/dynamic_conv.h"
#include "sparsescope/kernels/error.h"

namespace {

// out[b, c, h, w] = sum_{i, j} weight[b, g, i, j, h, w] x[b, c, h + i - r, w + j - r], as loops.
at::Tensor by_definition(const at::Tensor& x, const at::Tensor& weight) {
  const at::Tensor xd = x.to(at::kDouble).cpu(), wd = weight.to(at::kDouble).cpu();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), G = weight.size(1), k = weight.size(2);
  at::Tensor out = at::zeros({B, C, H, W}, at::kDouble);
  auto xa = xd.accessor<double, 4>();
  auto wa = wd.accessor<double, 6>();
  auto oa = out.accessor<double, 4>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < k; ++j) {
              const int64_t hh = h + i - k / 2, ww = w + j - k / 2;
              if (hh >= 0 && hh < H && ww >= 0 && ww < W) oa[b][c][h][w] += wa[b][c / (C / G)][i][j][h][w] * xa[b][c][hh][ww];
            }
  return out;
}

// (B, C, G, H, W, k): planes smaller than the kernel, larger than the fused kernels' 32 x 8 tiles
// and not a multiple of them, k from 1 to 11 (the fused kernels' largest) and 13 (the reference's).
using Shape = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;
const Shape kShapes[] = {{2, 12, 3, 9, 11, 7},  {1, 8, 8, 5, 4, 3},   {2, 6, 1, 7, 7, 5},  {1, 4, 2, 3, 2, 7},
                         {2, 12, 2, 37, 70, 7}, {1, 4, 2, 13, 35, 11}, {1, 3, 3, 17, 9, 1}, {1, 2, 1, 6, 9, 13}};

}  // namespace

TEST(DynamicConv, ReferenceIsTheDefinition) {
  at::manual_seed(0);
  for (const auto& [B, C, G, H, W, k] : kShapes) {
    const at::Tensor x = at::randn({B, C, H, W}, at::kDouble), w = at::randn({B, G, k, k, H, W}, at::kDouble);
    EXPECT_LT((sparsescope::dynamic_depthwise_conv(x, w) - by_definition(x, w)).abs().max().item<double>(), 1e-12)
        << C << "/" << G << " k " << k;
  }
}

TEST(DynamicConv, ShapesThatDoNotFitAreErrors) {
  const at::Tensor x = at::zeros({1, 6, 5, 5});
  EXPECT_THROW(sparsescope::dynamic_depthwise_conv(x, at::zeros({1, 4, 3, 3, 5, 5})), sparsescope::Error);  // 4 ∤ 6
  EXPECT_THROW(sparsescope::dynamic_depthwise_conv(x, at::zeros({1, 3, 4, 4, 5, 5})), sparsescope::Error);  // even k
  EXPECT_THROW(sparsescope::dynamic_depthwise_conv(x, at::zeros({1, 3, 3, 3, 5, 4})), sparsescope::Error);
  EXPECT_THROW(sparsescope::dynamic_depthwise_conv(x, at::zeros({1, 3, 3, 3, 5, 5}, at::kDouble)), sparsescope::Error);
}

TEST(DynamicConvCuda, FusedMatchesTheReferenceAndItsGradients) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  at::manual_seed(0);
  for (const auto dtype : {at::kFloat, at::kHalf, at::kBFloat16}) {
    const double tol = dtype == at::kFloat ? 1e-5 : dtype == at::kHalf ? 2e-3 : 2e-2;
    for (const auto& [B, C, G, H, W, k] : kShapes) {
      SCOPED_TRACE(testing::Message() << dtype << " C " << C << " G " << G << " k " << k);
      const at::Tensor x64 = at::randn({B, C, H, W}, at::kDouble), w64 = at::randn({B, G, k, k, H, W}, at::kDouble);
      const at::Tensor g64 = at::randn({B, C, H, W}, at::kDouble);
      // The float64 reference and its autograd gradients, from the values the GPU sees.
      const at::Tensor xr = x64.to(dtype).to(at::kDouble).requires_grad_(), wr = w64.to(dtype).to(at::kDouble).requires_grad_();
      const at::Tensor want = sparsescope::dynamic_depthwise_conv_reference(xr, wr);
      want.backward(g64.to(dtype).to(at::kDouble));
      const at::Tensor x = x64.to(at::kCUDA, dtype).requires_grad_(), w = w64.to(at::kCUDA, dtype).requires_grad_();
      const at::Tensor got = sparsescope::dynamic_depthwise_conv(x, w);
      got.backward(g64.to(at::kCUDA, dtype));
      auto rel = [](const at::Tensor& a, const at::Tensor& b) {
        return ((a.cpu().to(at::kDouble) - b).abs().max() / b.abs().max()).item<double>();
      };
      EXPECT_LT(rel(got.detach(), want.detach()), tol);
      EXPECT_LT(rel(x.grad(), xr.grad()), tol);
      EXPECT_LT(rel(w.grad(), wr.grad()), tol);
    }
  }
  // Strided inputs go through the fused path as contiguous copies.
  const at::Tensor x = at::randn({1, 8, 9, 6}, at::kCUDA).transpose(2, 3), w = at::randn({1, 2, 3, 3, 6, 9}, at::kCUDA);
  EXPECT_LT((sparsescope::dynamic_depthwise_conv(x, w) - sparsescope::dynamic_depthwise_conv_reference(x, w)).abs().max().item<double>(), 1e-5);
}
