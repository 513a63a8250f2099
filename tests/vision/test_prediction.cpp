// top_classes against a float64 softmax written out here, and the two forms predictions take.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/prediction.h"

namespace sv = sparsescope::vision;

TEST(Prediction, TopClassesAreTheSoftmaxMaxima) {
  const double rows[2][4] = {{1.0, 3.0, -2.0, 2.5}, {0.5, 0.0, 7.0, -1.0}};
  const at::Tensor logits = at::tensor({1.0, 3.0, -2.0, 2.5, 0.5, 0.0, 7.0, -1.0}, at::kDouble).view({2, 4});
  const auto top = sv::top_classes(logits, 3, {"a", "b", "c", "d"});
  ASSERT_EQ(top.size(), 2u);
  const int64_t order[2][3] = {{1, 3, 0}, {2, 0, 1}};
  for (int i = 0; i < 2; ++i) {
    double total = 0;
    for (double v : rows[i]) total += std::exp(v);
    ASSERT_EQ(top[i].size(), 3u);
    for (int j = 0; j < 3; ++j) {
      SCOPED_TRACE(testing::Message() << "row " << i << " rank " << j);
      EXPECT_EQ(top[i][j].index, order[i][j]);
      EXPECT_NEAR(top[i][j].score, std::exp(rows[i][order[i][j]]) / total, 1e-6);
      EXPECT_EQ(top[i][j].label, std::string(1, static_cast<char>('a' + order[i][j])));
    }
  }
  // k beyond the classes gives every class; no names, no labels.
  const auto all = sv::top_classes(logits, 10, {});
  ASSERT_EQ(all[0].size(), 4u);
  EXPECT_EQ(all[0][3].index, 2);
  EXPECT_TRUE(all[0][0].label.empty());
}

TEST(Prediction, BadArgumentsNameTheProblem) {
  auto expect_error = [](auto&& fn, const std::string& part) {
    try {
      fn();
      ADD_FAILURE() << "no error, expected one mentioning " << part;
    } catch (const sparsescope::Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_error([] { sv::top_classes(at::zeros({4}), 1, {}); }, "[B, C]");
  expect_error([] { sv::top_classes(at::zeros({1, 3}), 1, {"a", "b"}); }, "2 class names for 3 classes");
  expect_error([] { sv::top_classes(at::zeros({1, 3}), 0, {}); }, "k >= 1");
}

TEST(Prediction, DescribedAndWrittenAsJson) {
  const std::vector<sv::ClassScore> top = {{9, 0.75f, "Ankle boot"}, {5, 0.2f, ""}, {7, 0.05f, "Sneaker"}};
  EXPECT_EQ(sv::describe(top), "Ankle boot 75.0 %, class 5 20.0 %, Sneaker 5.0 %");
  EXPECT_EQ(sv::describe(top, 1), "Ankle boot 75.0 %");
  EXPECT_EQ(sv::describe({}), "");
  const nlohmann::json j = top;
  EXPECT_EQ(j[0]["class"], 9);
  EXPECT_EQ(j[0]["label"], "Ankle boot");
  EXPECT_FLOAT_EQ(j[0]["score"].get<float>(), 0.75f);
  EXPECT_FALSE(j[1].contains("label"));
}
