// A ViT's forward replayed from a CUDA graph gives the eager forward's logits, and evaluation through
// it the eager evaluation's numbers; off CUDA both are errors naming the device.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/evaluate.h"
#include "sparsescope/vision/graphed_forward.h"
#include "sparsescope/vision/vit.h"

namespace sv = sparsescope::vision;

namespace {

sv::VisionTransformer tiny_vit() {
  sv::ViTConfig c;
  c.name = "tiny";
  c.img_size = 16;
  c.patch_size = 4;
  c.embed_dim = 32;
  c.depth = 2;
  c.num_heads = 2;
  c.num_classes = 5;
  at::manual_seed(3);
  sv::VisionTransformer model(c);
  model->eval();
  return model;
}

// 10 random images of the tiny model's size, 5 classes.
sv::ImageDataset random_images() {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(4);
  sv::ImageDataset data;
  data.images = at::randint(0, 256, {10, 3, 16, 16}, gen, at::kByte);
  data.labels = at::randint(0, 5, {10}, gen, at::kLong);
  data.source = "random";
  return data;
}

}  // namespace

TEST(GraphedForward, AnInputOffCudaIsAnError) {
  auto model = tiny_vit();
  try {
    sv::GraphedForward graphed([&](const at::Tensor& x) { return model->forward(x); }, at::zeros({2, 3, 16, 16}));
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos) << e.what();
  }
}

TEST(GraphedForward, ReplaysGiveTheEagerLogits) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  auto model = tiny_vit();
  model->to(at::kCUDA, at::kHalf);
  const at::NoGradGuard no_grad;
  const auto options = at::TensorOptions(at::kCUDA).dtype(at::kHalf);
  sv::GraphedForward graphed([&](const at::Tensor& x) { return model->forward(x); }, at::zeros({4, 3, 16, 16}, options));
  for (int round = 0; round < 3; ++round) {
    const at::Tensor x = at::randn({4, 3, 16, 16}, options);
    const at::Tensor want = model->forward(x);
    const at::Tensor got = graphed(x).clone();
    EXPECT_TRUE(at::equal(got, want)) << "round " << round;
  }
  EXPECT_FALSE(graphed.matches(at::zeros({3, 3, 16, 16}, options)));
  EXPECT_THROW(graphed(at::zeros({3, 3, 16, 16}, options)), sparsescope::Error);
}

TEST(GraphedForward, EvaluationOffCudaIsAnError) {
  auto model = tiny_vit();
  sv::EvalOptions options;
  options.batch = 4;
  options.cuda_graph = true;
  EXPECT_THROW(sv::evaluate(model, random_images(), options), sparsescope::Error);
}

TEST(GraphedForward, EvaluationGivesTheEagerNumbers) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  auto model = tiny_vit();
  model->to(at::kCUDA);
  sv::EvalOptions options;
  options.batch = 4;  // two full batches through the graph, the last 2 images eagerly
  const sv::EvalResult eager = sv::evaluate(model, random_images(), options);
  options.cuda_graph = true;
  const sv::EvalResult graphed = sv::evaluate(model, random_images(), options);
  EXPECT_EQ(graphed.top1, eager.top1);
  EXPECT_EQ(graphed.top5, eager.top5);
  EXPECT_NEAR(graphed.loss, eager.loss, 1e-9);
}
