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

namespace sl = sparsescope::vlm;
namespace sv = sparsescope::vision;

namespace {

const sv::SafetensorsFile& text_fixture() {
  static const sv::SafetensorsFile file =
      sv::load_safetensors(std::string(SPARSESCOPE_FIXTURES_DIR) + "/clip/clip_text.safetensors");
  return file;
}

at::Tensor fixture_tensor(const std::string& name) {
  for (const auto& [n, t] : text_fixture().tensors) {
    if (n == name) return t;
  }
  ADD_FAILURE() << "fixture has no " << name;
  return {};
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The fixture's weights: 0.05 sin(0.37 i + o) over the flat index, o = the name's bytes summed mod 97;
// LayerNorm weights plus 1.
void deterministic(sl::CLIP& model) {
  at::NoGradGuard no_grad;
  for (auto& item : model->named_parameters(/*recurse=*/true)) {
    int offset = 0;
    for (const unsigned char ch : item.key()) offset += ch;
    offset %= 97;
    const at::Tensor i = at::arange(item.value().numel(), at::kDouble);
    item.value().copy_((0.05 * at::sin(0.37 * i + offset)).view(item.value().sizes()));
    for (const char* ln : {".ln_1.weight", ".ln_2.weight", "ln_final.weight"}) {
      if (ends_with(item.key(), ln)) item.value().add_(1.0);
    }
  }
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
    const at::Tensor want = fixture_tensor(act + "/features");
    const at::Tensor got = model->encode_text(fixture_tensor("ids"));
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT(((got - want).abs().max() / want.abs().max()).item<double>(), 1e-5);
    const at::Tensor unit = model->encode_text(fixture_tensor("ids"), /*normalize=*/true);
    EXPECT_TRUE(unit.norm(2, {-1}).allclose(at::ones({3}), 1e-5, 1e-5));
  }
}

TEST(Clip, RejectsIdsOfTheWrongShapeOrType) {
  sl::CLIP model(sl::clip_config("clip_tiny"));
  EXPECT_THROW(model->encode_text(at::zeros({2, 76}, at::kLong)), sparsescope::Error);
  EXPECT_THROW(model->encode_text(at::zeros({2, 77}, at::kInt)), sparsescope::Error);
  EXPECT_THROW(sl::clip_config("ViT-X-99"), sparsescope::Error);
}
