// CLIP's text side against open_clip's own model (fixtures from scripts/fixtures/make_clip_fixtures.py):
// the parameter names in order (so open_clip and OpenAI state dicts load by name) and the text
// features of the "clip_tiny" configuration with GELU and QuickGELU, on deterministic weights both
// sides compute, within 1e-5 of the features' scale in float32 on the CPU.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vlm/clip.h"
#include "sine_weights.h"

namespace sl = sparsescope::vlm;
namespace sv = sparsescope::vision;

namespace {

const sv::SafetensorsFile& text_fixture() {
  static const sv::SafetensorsFile file =
      sv::load_safetensors(std::string(SPARSESCOPE_FIXTURES_DIR) + "/clip/clip_text.safetensors");
  return file;
}

at::Tensor tensor(const std::string& name) { return sparsescope::test::fixture_tensor(text_fixture(), name); }

// The fixture's weights (sine_weights.h), LayerNorm weights around 1.
void deterministic(sl::CLIP& model) {
  sparsescope::test::sine_weights(*model, [](const std::string& name) {
    for (const char* ln : {".ln_1.weight", ".ln_2.weight", "ln_final.weight"}) {
      if (sparsescope::test::ends_with(name, ln)) return true;
    }
    return false;
  });
}

}  // namespace

TEST(Clip, TextFeaturesMatchOpenClip) {
  for (const std::string act : {"gelu", "quickgelu"}) {
    SCOPED_TRACE(act);
    sl::CLIP model(sl::clip_config(act == "gelu" ? "clip_tiny" : "clip_tiny-quickgelu"));
    std::vector<std::string> official;
    std::istringstream lines(text_fixture().metadata.at(act + "/names"));
    for (std::string line; std::getline(lines, line);) official.push_back(line);
    const auto ours = model->named_parameters(/*recurse=*/true);
    ASSERT_EQ(ours.size(), official.size());
    for (size_t i = 0; i < official.size(); ++i) ASSERT_EQ(ours[i].key(), official[i]) << "parameter " << i;
    deterministic(model);
    at::NoGradGuard no_grad;
    const at::Tensor want = tensor(act + "/features");
    const at::Tensor got = model->encode_text(tensor("ids"));
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT(((got - want).abs().max() / want.abs().max()).item<double>(), 1e-5);
    const at::Tensor unit = model->encode_text(tensor("ids"), /*normalize=*/true);
    EXPECT_TRUE(unit.norm(2, {-1}).allclose(at::ones({3}), 1e-5, 1e-5));
  }
}

TEST(Clip, RejectsIdsOfTheWrongShapeOrType) {
  sl::CLIP model(sl::clip_config("clip_tiny"));
  EXPECT_THROW(model->encode_text(at::zeros({2, 76}, at::kLong)), sparsescope::Error);
  EXPECT_THROW(model->encode_text(at::zeros({2, 77}, at::kInt)), sparsescope::Error);
  EXPECT_THROW(sl::clip_config("ViT-X-99"), sparsescope::Error);
}
