// The weighted k-NN classifier against a vote counted by hand.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/knn.h"

namespace sv = sparsescope::vision;

// Train points on the unit circle at 0, 10, 20 degrees (class 0) and 90, 100 degrees (class 1).
// A test point at 50 degrees: its 3 nearest are 20 (30 degrees away), 10 and 90 (40 each); two
// class-0 votes exp(cos / T) outweigh the one of class 1. At 95 and 5 degrees the two nearest
// share the test point's class.
TEST(Knn, WeightsVotesBySimilarity) {
  auto at_degrees = [](std::initializer_list<double> degrees) {
    std::vector<float> xy;
    for (const double d : degrees) {
      xy.push_back(static_cast<float>(std::cos(d * M_PI / 180)));
      xy.push_back(static_cast<float>(std::sin(d * M_PI / 180)));
    }
    return at::tensor(xy).view({static_cast<int64_t>(degrees.size()), 2});
  };
  const at::Tensor train = at_degrees({0, 10, 20, 90, 100}) * 3;  // lengths do not matter
  const at::Tensor labels = at::tensor({0, 0, 0, 1, 1}, at::kLong);
  const at::Tensor test = at_degrees({50, 95, 5});
  EXPECT_DOUBLE_EQ(sv::knn_top1(train, labels, test, at::tensor({0, 1, 0}, at::kLong), 2, 3), 1.0);
  // With k = 5 every train point votes: class 0 has three, but at 95 degrees class 1's two are far
  // closer; with a large temperature the weights flatten and the majority (class 0) wins.
  EXPECT_DOUBLE_EQ(sv::knn_top1(train, labels, test.narrow(0, 1, 1), at::tensor({1}, at::kLong), 2, 5, 0.07), 1.0);
  EXPECT_DOUBLE_EQ(sv::knn_top1(train, labels, test.narrow(0, 1, 1), at::tensor({1}, at::kLong), 2, 5, 100.0), 0.0);
  EXPECT_THROW(sv::knn_top1(train, labels, test, at::tensor({0}, at::kLong), 2), sparsescope::Error);
}
