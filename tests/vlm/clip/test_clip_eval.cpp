// Zero-shot classifiers and the CLIP loss against open_clip (fixtures from
// scripts/fixtures/make_clip_fixtures.py), retrieval metrics against ranks worked out by hand.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vlm/clip_eval.h"
#include "clip_fixture.h"

namespace sl = sparsescope::vlm;
namespace fs = std::filesystem;

namespace {

using sparsescope::test::clip_tensor;

sl::CLIP tiny_with_fixture_weights() {
  sl::CLIP model(sl::clip_config("clip_tiny"));
  sparsescope::test::clip_sine_weights(model);
  return model;
}

at::Tensor unit(const at::Tensor& f) { return f / f.norm(2, {-1}, true); }

}  // namespace

TEST(ClipZeroShot, ClassifierMatchesOpenClip) {
  const fs::path vocab = fs::path(SPARSESCOPE_SHARED_DATA_DIR) / "clip" / "bpe_simple_vocab_16e6.txt.gz";
  if (!fs::exists(vocab)) GTEST_SKIP() << vocab << " is absent (../shared/data): no CLIP vocabulary to test";
  sl::CLIP model = tiny_with_fixture_weights();
  const at::Tensor got =
      sl::zero_shot_classifier(model, sl::ClipTokenizer(vocab.string()), {"airplane", "cat"}, sl::cifar10_templates());
  const at::Tensor want = clip_tensor("zero_shot");
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5);
}

TEST(ClipZeroShot, TemplatesNeedAPlaceForTheName) {
  EXPECT_EQ(sl::cifar10_templates().size(), 18u);
  EXPECT_EQ(sl::simple_imagenet_templates().size(), 7u);
  EXPECT_EQ(sl::fill_template("a photo of a {}.", "cat"), "a photo of a cat.");
  EXPECT_THROW(sl::fill_template("a photo", "cat"), sparsescope::Error);
}

TEST(ClipLoss, MatchesOpenClipAndIsSmallForMatchingPairs) {
  sl::CLIP model = tiny_with_fixture_weights();
  const at::Tensor image = unit(clip_tensor("gelu/image_features"));
  const at::Tensor text = unit(clip_tensor("gelu/text_features").slice(0, 0, 2));
  const at::Tensor got = sl::clip_loss(image, text, model->logit_scale().detach());
  EXPECT_NEAR(got.item<double>(), clip_tensor("clip_loss").item<double>(), 1e-5);
  const at::Tensor same = unit(at::eye(4));
  EXPECT_LT(sl::clip_loss(same, same, at::full({}, 4.6)).item<double>(), 1e-3);
  EXPECT_THROW(sl::clip_loss(same, same.slice(0, 0, 3), at::zeros({})), sparsescope::Error);
}

TEST(ClipRetrieval, RanksByTheBestPositive) {
  // Three images, five captions: captions 0, 1 of image 0; 2, 3 of image 1; 4 of image 2.
  const at::Tensor s = at::tensor({0.9, 0.1, 0.5, 0.2, 0.3,    // image 0: best own 0.9 -> rank 1
                                   0.8, 0.7, 0.6, 0.75, 0.1,   // image 1: best own 0.75, 0.8 above -> rank 2
                                   0.95, 0.9, 0.85, 0.8, 0.2},  // image 2: own 0.2, four above -> rank 5
                                  at::kDouble)
                           .view({3, 5});
  const sl::RetrievalMetrics m = sl::retrieval_metrics(s, {0, 0, 1, 1, 2});
  EXPECT_DOUBLE_EQ(m.image_to_text.recall[0], 100.0 / 3);
  EXPECT_DOUBLE_EQ(m.image_to_text.recall[1], 100.0);
  EXPECT_DOUBLE_EQ(m.image_to_text.mean_rank, (1 + 2 + 5) / 3.0);
  EXPECT_DOUBLE_EQ(m.image_to_text.median_rank, 2);
  // Captions query images (columns): caption 0 -> 0.9 own, 0.95 above -> 2; caption 1 -> 0.1 own,
  // 0.7 and 0.9 above -> 3; caption 2 -> 0.6 own, 0.85 above -> 2; caption 3 -> 0.75 own, 0.8 above ->
  // 2; caption 4 -> 0.2 own, 0.3 and 0.1: 0.3 above -> 2.
  EXPECT_DOUBLE_EQ(m.text_to_image.recall[0], 0);
  EXPECT_DOUBLE_EQ(m.text_to_image.recall[1], 100);
  EXPECT_DOUBLE_EQ(m.text_to_image.mean_rank, (2 + 3 + 2 + 2 + 2) / 5.0);
  EXPECT_DOUBLE_EQ(m.text_to_image.median_rank, 2);
  EXPECT_THROW(sl::retrieval_metrics(s, {0, 0, 1, 1}), sparsescope::Error);
  EXPECT_THROW(sl::retrieval_metrics(s, {0, 0, 1, 1, 3}), sparsescope::Error);
  EXPECT_THROW(sl::retrieval_metrics(s, {0, 0, 1, 1, 1}), sparsescope::Error);  // image 2 has no caption
}
