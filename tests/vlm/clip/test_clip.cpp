// CLIP against open_clip's own model (fixtures from scripts/fixtures/make_clip_fixtures.py): the
// parameter names in order (so open_clip and OpenAI state dicts load by name), and the image and
// text features of "clip_tiny" with GELU and QuickGELU and of "ViT-B-32", on deterministic weights
// both sides compute, within 1e-5 of the features' scale in float32 on the CPU; loading state dicts.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vlm/clip.h"
#include "clip_fixture.h"
#include "temp_dir.h"

namespace sl = sparsescope::vlm;
namespace sv = sparsescope::vision;

namespace {

using sparsescope::test::clip_images;
using sparsescope::test::clip_tensor;

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  EXPECT_EQ(got.sizes(), want.sizes());
  return ((got - want).abs().max() / want.abs().max()).item<double>();
}

void expect_matches_open_clip(const std::string& config, const std::string& key, int64_t image_batch, int64_t text_batch) {
  SCOPED_TRACE(config);
  sl::CLIP model(sl::clip_config(config));
  std::vector<std::string> official;
  std::istringstream lines(sparsescope::test::clip_fixture().metadata.at(key + "/names"));
  for (std::string line; std::getline(lines, line);) official.push_back(line);
  const auto ours = model->named_parameters(/*recurse=*/true);
  ASSERT_EQ(ours.size(), official.size());
  for (size_t i = 0; i < official.size(); ++i) ASSERT_EQ(ours[i].key(), official[i]) << "parameter " << i;
  sparsescope::test::clip_sine_weights(model);
  at::NoGradGuard no_grad;
  const int64_t size = model->config().image_size;
  EXPECT_LT(relative_error(model->encode_image(clip_images(image_batch, size)), clip_tensor(key + "/image_features")), 1e-5);
  const at::Tensor ids = clip_tensor("ids").slice(0, 0, text_batch);
  EXPECT_LT(relative_error(model->encode_text(ids), clip_tensor(key + "/text_features")), 1e-5);
  const at::Tensor unit = model->encode_image(clip_images(image_batch, size), /*normalize=*/true);
  EXPECT_TRUE(unit.norm(2, {-1}).allclose(at::ones({image_batch}), 1e-5, 1e-5));
  EXPECT_TRUE(model->encode_text(ids, true).norm(2, {-1}).allclose(at::ones({text_batch}), 1e-5, 1e-5));
}

}  // namespace

TEST(Clip, TinyMatchesOpenClipWithGeluAndQuickGelu) {
  expect_matches_open_clip("clip_tiny", "gelu", 2, 3);
  expect_matches_open_clip("clip_tiny-quickgelu", "quickgelu", 2, 3);
}

TEST(Clip, VitB32MatchesOpenClip) { expect_matches_open_clip("ViT-B-32", "ViT-B-32", 1, 1); }

TEST(Clip, ConfigurationsAreOpenClips) {
  const sl::ClipConfig l14 = sl::clip_config("ViT-L-14-quickgelu");
  EXPECT_EQ(l14.embed_dim, 768);
  EXPECT_EQ(l14.patch_size, 14);
  EXPECT_EQ(l14.vision_width, 1024);
  EXPECT_EQ(l14.vision_heads, 16);
  EXPECT_EQ(l14.vision_layers, 24);
  EXPECT_EQ(l14.text_width, 768);
  EXPECT_TRUE(l14.quick_gelu);
  const sv::EvalTransform t = sl::clip_eval_transform(sl::clip_config("ViT-B-16"));
  EXPECT_EQ(t.img_size, 224);
  EXPECT_EQ(t.scale_size(), 224);  // open_clip's eval: shorter side to the image size, then the center crop
  EXPECT_FLOAT_EQ(t.mean[0], 0.48145466f);
}

class ClipWeights : public sparsescope::test::TempDirTest {};

TEST_F(ClipWeights, LoadUnchangedAndOthersAreRejectedByName) {
  sl::CLIP source(sl::clip_config("clip_tiny"));
  // As open_clip saves a DataParallel checkpoint, with OpenAI's extra entries and fp16 tensors.
  sv::NamedTensors saved;
  for (const auto& item : source->named_parameters()) saved.emplace_back("module." + item.key(), item.value().to(at::kHalf));
  saved.emplace_back("module.input_resolution", at::full({}, 64, at::kLong));
  saved.emplace_back("module.context_length", at::full({}, 77, at::kLong));
  const std::string path = (dir_ / "clip.safetensors").string();
  sv::save_safetensors(path, saved);
  sl::CLIP model(sl::clip_config("clip_tiny"));
  sl::load_clip_weights(model, path);
  for (const auto& item : model->named_parameters()) {
    EXPECT_TRUE(item.value().equal(source->named_parameters()[item.key()].to(at::kHalf).to(at::kFloat))) << item.key();
  }
  sl::CLIP other(sl::clip_config("ViT-B-32"));
  try {
    sl::load_clip_weights(other, path);
    FAIL() << "loaded clip_tiny weights into ViT-B-32";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Clip, RejectsInputsOfTheWrongShapeOrType) {
  sl::CLIP model(sl::clip_config("clip_tiny"));
  EXPECT_THROW(model->encode_text(at::zeros({2, 76}, at::kLong)), sparsescope::Error);
  EXPECT_THROW(model->encode_text(at::zeros({2, 77}, at::kInt)), sparsescope::Error);
  EXPECT_THROW(model->encode_image(at::zeros({1, 3, 32, 32})), sparsescope::Error);
  EXPECT_THROW(model->encode_image(at::zeros({3, 64, 64})), sparsescope::Error);
  EXPECT_THROW(sl::clip_config("ViT-X-99"), sparsescope::Error);
}
