// Parity of the ViT family with timm, on fixtures made by scripts/fixtures/make_vit_fixtures.py.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/probe_set.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/vit.h"
#include "vit_fixture.h"

namespace sv = sparsescope::vision;

namespace {

using sparsescope::testing::fixture_vit_config;

const std::string kDir = std::string(SPARSESCOPE_FIXTURES_DIR) + "/vit/";

// Recomputes each site's dense attention probabilities from what attend() was given.
class CaptureProbs : public sv::ProbeSet {
 public:
  sparsescope::Probe* site(const std::string& name) override {
    auto& probe = probes_[name];
    probe.name = name;
    probe.out = &probs;
    return &probe;
  }
  std::map<std::string, at::Tensor> probs;

 private:
  struct SiteProbe : sparsescope::Probe {
    std::string name;
    std::map<std::string, at::Tensor>* out = nullptr;
    void observe(const at::Tensor& q, const at::Tensor& k, const at::Tensor&, const sparsescope::Pattern&,
                 double scale) override {
      (*out)[name] = at::softmax(at::matmul(q, k.transpose(-2, -1)) * scale, -1);  // [B, H, N, N]
    }
  };
  std::map<std::string, SiteProbe> probes_;
};

std::map<std::string, at::Tensor> tensors(const sv::SafetensorsFile& file) {
  return {file.tensors.begin(), file.tensors.end()};
}

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  return (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>() /
         want.to(at::kDouble).abs().max().item<double>();
}

void expect_parity(const std::string& name, const at::Device& device) {
  const auto expected = sv::load_safetensors(kDir + name + ".expected.safetensors");
  auto want = tensors(expected);
  sv::VisionTransformer model(fixture_vit_config(nlohmann::json::parse(expected.metadata.at("config"))));
  sv::load_vit_weights(model, kDir + name + ".weights.safetensors");
  model->eval();
  model->to(device);
  CaptureProbs capture;
  at::NoGradGuard no_grad;
  const auto out = model->forward(want.at("input").to(device), &capture).cpu();
  EXPECT_LE(relative_error(out, want.at("output")), 1e-4) << name;
  ASSERT_EQ(static_cast<int64_t>(capture.probs.size()), model->config().depth);
  for (const auto& [site, probs] : capture.probs) {
    const double err = (probs.cpu() - want.at(site + "/probs")).abs().max().item<double>();
    EXPECT_LE(err, 1e-5) << name << " " << site;
  }
}

class VitParity : public ::testing::TestWithParam<std::string> {};

TEST_P(VitParity, LogitsAndAttentionMatchTimmOnCpu) { expect_parity(GetParam(), at::kCPU); }

TEST_P(VitParity, LogitsAndAttentionMatchTimmOnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  expect_parity(GetParam(), at::kCUDA);
}

INSTANTIATE_TEST_SUITE_P(Timm, VitParity, ::testing::Values("vit_small_cfg", "deit_distilled_cfg", "dino_cfg"));

TEST(Vit, ResamplesPositionEmbeddingsLikeTimm) {
  const auto expected = sv::load_safetensors(kDir + "vit_small_cfg_48px.expected.safetensors");
  auto want = tensors(expected);
  sv::VisionTransformer model(fixture_vit_config(nlohmann::json::parse(expected.metadata.at("config"))));
  sv::load_vit_weights(model, kDir + "vit_small_cfg.weights.safetensors");  // trained at 32 px
  model->eval();
  at::NoGradGuard no_grad;
  EXPECT_LE((model->named_parameters()["pos_embed"] - want.at("pos_embed")).abs().max().item<double>(), 1e-5);
  EXPECT_LE(relative_error(model->forward(want.at("input")), want.at("output")), 1e-4);
}

TEST(Vit, RealConfigFromAnImageFileMatchesTimmTop5) {
  const auto expected = tensors(sv::load_safetensors(kDir + "vit_tiny_patch16_224.chelsea.expected.safetensors"));
  sv::VisionTransformer model(sv::vit_config("vit_tiny_patch16_224"));
  sv::load_vit_weights(model, kDir + "vit_tiny_patch16_224.fp16.safetensors");  // float16 into float32
  model->eval();
  at::NoGradGuard no_grad;
  // The model alone, on timm's own preprocessed input.
  EXPECT_LE(relative_error(model->forward(expected.at("input")), expected.at("output")), 1e-4);
  // End to end: our decoder and preprocessing, then the model.
  const auto image = sv::read_image(std::string(SPARSESCOPE_SAMPLES_DIR) + "/chelsea.png");
  const auto input = sv::eval_transform(image, model->config().eval).unsqueeze(0);
  const auto logits = model->forward(input);
  EXPECT_LE(relative_error(logits, expected.at("output")), 1e-3);
  EXPECT_TRUE(at::equal(std::get<1>(logits.topk(5)), expected.at("top5")));
}

TEST(Vit, ComputesInHalfPrecisionFromFloatWeights) {
  const auto expected = sv::load_safetensors(kDir + "vit_small_cfg.expected.safetensors");
  auto want = tensors(expected);
  sv::VisionTransformer model(fixture_vit_config(nlohmann::json::parse(expected.metadata.at("config"))));
  sv::load_vit_weights(model, kDir + "vit_small_cfg.weights.safetensors");
  model->eval();
  model->to(at::kBFloat16);
  at::NoGradGuard no_grad;
  const auto out = model->forward(want.at("input").to(at::kBFloat16));
  EXPECT_EQ(out.scalar_type(), at::kBFloat16);
  EXPECT_LE(relative_error(out, want.at("output")), 5e-2);
}

TEST(Vit, NamedConfigsAgreeWithTimm) {
  std::ifstream in(kDir + "timm_configs.json");
  const auto timm = nlohmann::json::parse(in);
  ASSERT_EQ(timm.size(), sv::vit_config_names().size());
  for (const auto& [name, t] : timm.items()) {
    const auto c = sv::vit_config(name);
    EXPECT_EQ(c.embed_dim, t["embed_dim"]) << name;
    EXPECT_EQ(c.depth, t["depth"]) << name;
    EXPECT_EQ(c.num_heads, t["num_heads"]) << name;
    EXPECT_EQ(c.patch_size, t["patch_size"]) << name;
    EXPECT_EQ(c.img_size, t["img_size"]) << name;
    EXPECT_EQ(c.num_classes, t["num_classes"]) << name;
    EXPECT_EQ(c.distilled, t["distilled"]) << name;
    EXPECT_DOUBLE_EQ(c.eval.crop_pct, t["crop_pct"].get<double>()) << name;
    EXPECT_EQ(sv::to_string(c.eval.interpolation), t["interpolation"].get<std::string>()) << name;
    for (int i = 0; i < 3; ++i) {
      EXPECT_FLOAT_EQ(c.eval.mean[i], t["mean"][i].get<float>()) << name;
      EXPECT_FLOAT_EQ(c.eval.std[i], t["std"][i].get<float>()) << name;
    }
    sv::VisionTransformer model(c);
    int64_t parameters = 0;
    for (const auto& p : model->parameters()) parameters += p.numel();
    EXPECT_EQ(parameters, t["parameters"]) << name;
  }
}

TEST(Vit, UnknownModelNameListsTheKnownOnes) {
  try {
    sv::vit_config("vit_huge_patch3");
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("vit_huge_patch3"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("deit_small_patch16_224"), std::string::npos);
  }
}

TEST(Vit, WeightsThatDoNotFitAreReportedTogether) {
  // DINO-style weights (no head) into a classifier, and a distilled DeiT's into a plain ViT.
  const auto config = fixture_vit_config(nlohmann::json::parse(
      sv::load_safetensors(kDir + "vit_small_cfg.expected.safetensors").metadata.at("config")));
  sv::VisionTransformer model(config);
  try {
    sv::load_vit_weights(model, kDir + "dino_cfg.weights.safetensors");
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("dino_cfg.weights.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("2 missing [head.bias, head.weight]"), std::string::npos) << msg;
  }
  try {
    sv::load_vit_weights(model, kDir + "deit_distilled_cfg.weights.safetensors");
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unexpected [dist_token, head_dist.bias, head_dist.weight]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("mis-shaped [pos_embed"), std::string::npos) << msg;
  }
}

TEST(Vit, RejectsImagesOfTheWrongSize) {
  sv::VisionTransformer model(sv::vit_config("vit_tiny_patch16_224"));
  EXPECT_THROW(model->forward(at::zeros({1, 3, 32, 32})), sparsescope::Error);
}

}  // namespace
