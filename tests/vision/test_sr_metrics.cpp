// MATLAB-style bicubic resizing and the SR papers' PSNR / SSIM against BasicSR's own functions, from
// tests/fixtures/sr_metrics.safetensors (scripts/fixtures/make_sr_metric_fixtures.py).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/matlab_resize.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/sr_metrics.h"

namespace sv = sparsescope::vision;

namespace {

std::map<std::string, at::Tensor> fixtures() {
  const auto file = sv::load_safetensors(std::string(SPARSESCOPE_FIXTURES_DIR) + "/sr_metrics.safetensors");
  return {file.tensors.begin(), file.tensors.end()};
}

}  // namespace

// BasicSR computes in float32 with its own summation order; we compute in float64.
TEST(MatlabImresize, MatchesBasicSR) {
  const auto t = fixtures();
  const at::Tensor input = t.at("resize/input");
  int compared = 0;
  for (const double scale : {0.25, 1.0 / 3, 0.5, 2.0, 3.0}) {
    for (const bool antialias : {true, false}) {
      char key[64];
      std::snprintf(key, sizeof key, "resize/%.6f/%d", scale, antialias ? 1 : 0);
      const at::Tensor want = t.at(key);
      const at::Tensor got = sv::matlab_imresize(input, scale, antialias);
      ASSERT_EQ(got.sizes(), want.sizes()) << key;
      EXPECT_LT((got - want).abs().max().item<double>(), 5e-6) << key;  // measured: at most 2.4e-6 (x3)
      ++compared;
    }
  }
  EXPECT_EQ(compared, 10);
}

TEST(MatlabImresize, BatchesAndDtypes) {
  const at::Tensor x = at::rand({2, 3, 9, 7}, at::kDouble);
  const at::Tensor batched = sv::matlab_imresize(x, 0.5);
  EXPECT_EQ(batched.sizes(), (at::IntArrayRef{2, 3, 5, 4}));
  EXPECT_TRUE(at::allclose(batched[1], sv::matlab_imresize(x[1], 0.5), 0, 1e-15));
  EXPECT_EQ(sv::matlab_imresize(x.to(at::kFloat), 2).scalar_type(), at::kFloat);
  // A constant image stays constant (weights sum to one, mirror padding).
  EXPECT_TRUE(at::allclose(sv::matlab_imresize(at::full({1, 8, 8}, 0.3, at::kDouble), 0.25),
                           at::full({1, 2, 2}, 0.3, at::kDouble), 0, 1e-12));
  EXPECT_THROW(sv::matlab_imresize(at::rand({9, 7}), 0.5), sparsescope::Error);
  EXPECT_THROW(sv::matlab_imresize(at::ones({1, 9, 7}, at::kByte), 0.5), sparsescope::Error);
  EXPECT_THROW(sv::matlab_imresize(at::rand({1, 9, 7}), 0), sparsescope::Error);
}

TEST(SrMetrics, MatchBasicSR) {
  const auto t = fixtures();
  const at::Tensor image = t.at("metrics/image"), reference = t.at("metrics/reference");
  const at::Tensor want = t.at("metrics/values");
  int i = 0;
  for (const int crop : {0, 4}) {
    for (const bool y : {false, true}) {
      const sv::SrMetricOptions options{crop, y};
      EXPECT_NEAR(sv::psnr(image, reference, options), want[i].item<double>(), 1e-5) << "crop " << crop << " y " << y;
      EXPECT_NEAR(sv::ssim(image, reference, options), want[i + 1].item<double>(), 1e-9) << "crop " << crop << " y " << y;
      i += 2;
    }
  }
}

TEST(SrMetrics, IdentityAndErrors) {
  const at::Tensor a = at::randint(0, 256, {3, 16, 16}, at::kDouble);
  EXPECT_TRUE(std::isinf(sv::psnr(a, a)));
  EXPECT_NEAR(sv::ssim(a, a), 1.0, 1e-12);
  EXPECT_THROW(sv::psnr(a, a.slice(1, 0, 15)), sparsescope::Error);
  EXPECT_THROW(sv::psnr(a, a, {8, true}), sparsescope::Error);
  EXPECT_THROW(sv::ssim(a.slice(1, 0, 10), a.slice(1, 0, 10)), sparsescope::Error);
  EXPECT_THROW(sv::psnr(a[0], a[0]), sparsescope::Error);
}
