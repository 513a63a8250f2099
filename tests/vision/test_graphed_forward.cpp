// A ViT's forward replayed from a CUDA graph gives the eager forward's logits; off CUDA it is an
// error naming the device.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "sparsescope/kernels/error.h"
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
