// The linear probe against its definition: its fit is the minimum of the stated objective (the
// gradient, written out here, vanishes there), and separable classes are classified exactly.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/linear_probe.h"

namespace sv = sparsescope::vision;

namespace {

// `per_class` points around each of `classes` centres 4 * spread apart in the first two of `dims`
// dimensions (the others noise), labels in order.
std::pair<at::Tensor, at::Tensor> blobs(int64_t classes, int64_t per_class, int64_t dims, double spread,
                                        uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor x = at::randn({classes * per_class, dims}, gen);
  const at::Tensor labels = at::arange(classes, at::kLong).repeat_interleave(per_class);
  const at::Tensor angle = labels.to(at::kDouble) * (2 * M_PI / static_cast<double>(classes));
  x.select(1, 0).add_(angle.cos() * 4 * spread);
  x.select(1, 1).add_(angle.sin() * 4 * spread);
  return {x.to(at::kFloat) * 3 + 1, labels};  // an offset and a scale the standardisation removes
}

}  // namespace

TEST(LinearProbe, SeparableClassesAreClassifiedExactly) {
  const auto [train, train_y] = blobs(3, 40, 5, 3.0, 1);
  const auto [test, test_y] = blobs(3, 20, 5, 3.0, 2);
  const sv::LinearProbeResult r = sv::linear_probe(train, train_y, test, test_y, 3);
  EXPECT_DOUBLE_EQ(r.train_top1, 1.0);
  EXPECT_DOUBLE_EQ(r.test_top1, 1.0);
  EXPECT_GT(r.iterations, 0);
}

TEST(LinearProbe, FitsTheMinimumOfThePenalisedCrossEntropy) {
  const auto [train, train_y] = blobs(4, 50, 6, 0.4, 3);  // overlapping: a finite optimum
  const auto [test, test_y] = blobs(4, 25, 6, 0.4, 4);
  const double l2 = 1e-2;
  const sv::LinearProbeResult r = sv::linear_probe(train, train_y, test, test_y, 4, {l2, 1000});
  // The standardisation: the training set's mean and (biased) variance plus 1e-6.
  const at::Tensor x = train.to(at::kDouble);
  EXPECT_TRUE(at::allclose(r.mean, x.mean(0), 0, 1e-12));
  EXPECT_TRUE(at::allclose(r.inv_std, 1 / (((x - x.mean(0)).square().mean(0)) + 1e-6).sqrt(), 1e-12, 0));
  // The gradient of mean cross-entropy + l2 / 2 ||W||^2 at the fit: X^T (P - Y) / N + l2 W and the
  // column sums of (P - Y) / N.
  const at::Tensor xs = (x - r.mean) * r.inv_std;
  const at::Tensor p = at::softmax(at::addmm(r.bias, xs, r.weight), 1);
  const at::Tensor y = at::one_hot(train_y, 4).to(at::kDouble);
  const double n = static_cast<double>(train.size(0));
  const at::Tensor grad_w = at::matmul(xs.t(), p - y) / n + l2 * r.weight;
  const at::Tensor grad_b = (p - y).sum(0) / n;
  EXPECT_LT(grad_w.abs().max().item<double>(), 1e-6);
  EXPECT_LT(grad_b.abs().max().item<double>(), 1e-6);
  const double loss = -(y * p.log()).sum(1).mean().item<double>() + 0.5 * l2 * r.weight.square().sum().item<double>();
  EXPECT_NEAR(r.loss, loss, 1e-12);
  // Better than chance on held-out points, and the test accuracy is that of the fitted classifier.
  const at::Tensor test_logits = at::addmm(r.bias, (test.to(at::kDouble) - r.mean) * r.inv_std, r.weight);
  EXPECT_DOUBLE_EQ(r.test_top1, test_logits.argmax(1).eq(test_y).to(at::kDouble).mean().item<double>());
  EXPECT_GT(r.test_top1, 0.5);
}

TEST(LinearProbe, BadInputIsAnErrorNamingIt) {
  const auto [x, y] = blobs(2, 5, 3, 1.0, 5);
  EXPECT_THROW(sv::linear_probe(x, y, x.narrow(1, 0, 2), y, 2), sparsescope::Error);
  EXPECT_THROW(sv::linear_probe(x, y.narrow(0, 0, 3), x, y, 2), sparsescope::Error);
  try {
    sv::linear_probe(x, y + 1, x, y, 2);
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("training labels outside [0, 2)"), std::string::npos) << e.what();
  }
}
