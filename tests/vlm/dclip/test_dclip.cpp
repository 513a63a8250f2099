// DCLIP's teacher block and losses against its official code (fixtures from
// scripts/fixtures/make_dclip_fixtures.py, which runs upstream's own CrossModalAttention,
// aggregation and losses): parameter names, attended text and regions, the global embedding, both
// losses and a gradient, in float32 on the CPU; padding masked instead of attended.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vlm/dclip.h"
#include "sine_weights.h"

namespace sl = sparsescope::vlm;
namespace sv = sparsescope::vision;

namespace {

const sv::SafetensorsFile& fixture() {
  static const sv::SafetensorsFile file =
      sv::load_safetensors(std::string(SPARSESCOPE_FIXTURES_DIR) + "/dclip/dclip.safetensors");
  return file;
}
at::Tensor tensor(const std::string& name) { return sparsescope::test::fixture_tensor(fixture(), name); }

sl::DclipTeacher teacher_with_fixture_weights() {
  sl::DclipTeacher teacher(sl::DclipTeacherConfig{64, 8, 2.0});
  // Upstream's weights were drawn under CrossModalAttention's own names.
  sparsescope::test::sine_weights(*teacher->named_children()["cross_modal_attention"], [](const std::string& name) {
    return name.rfind("norm_", 0) == 0 && sparsescope::test::ends_with(name, ".weight");
  });
  return teacher;
}

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  EXPECT_EQ(got.sizes(), want.sizes());
  return ((got - want).abs().max() / want.abs().max()).item<double>();
}

}  // namespace

TEST(DclipTeacher, MatchesUpstream) {
  sl::DclipTeacher teacher = teacher_with_fixture_weights();
  std::vector<std::string> official;
  std::istringstream lines(fixture().metadata.at("names"));
  for (std::string line; std::getline(lines, line);) official.push_back(line);
  const auto ours = teacher->named_parameters();
  ASSERT_EQ(ours.size(), official.size());
  for (size_t i = 0; i < official.size(); ++i) EXPECT_EQ(ours[i].key(), official[i]);

  const sl::DclipTeacherOutput out = teacher->forward(tensor("text"), tensor("regions"));
  EXPECT_LT(relative_error(out.text, tensor("attended_text")), 1e-5);
  EXPECT_LT(relative_error(out.regions, tensor("attended_regions")), 1e-5);
  EXPECT_LT(relative_error(out.global, tensor("global")), 1e-5);
  const at::Tensor loss = sl::dclip_contrastive_loss(out.global, tensor("target"));
  EXPECT_NEAR(loss.item<double>(), tensor("contrastive_loss").item<double>(), 1e-5);
  EXPECT_NEAR(sl::dclip_cosine_loss(out.global, tensor("target")).item<double>(), tensor("cosine_loss").item<double>(), 1e-6);
  loss.backward();
  const at::Tensor grad = teacher->named_parameters()["cross_modal_attention.text_to_image.in_proj_weight"].grad();
  EXPECT_LT(relative_error(grad, tensor("grad_text_to_image_in_proj_weight")), 1e-4);
}

// A padded batch gives each sample what it gives alone: padded rows are neither attended nor pooled.
TEST(DclipTeacher, PaddingIsMasked) {
  sl::DclipTeacher teacher = teacher_with_fixture_weights();
  at::NoGradGuard no_grad;
  const at::Tensor text = tensor("text"), regions = tensor("regions");
  const at::Tensor alone = teacher->forward(text.slice(0, 0, 1).slice(1, 0, 4), regions.slice(0, 0, 1).slice(1, 0, 2)).global;
  at::Tensor padded_text = text.clone(), padded_regions = regions.clone();
  padded_text[0].slice(0, 4).zero_();
  padded_regions[0].slice(0, 2).zero_();
  at::Tensor text_valid = at::ones({3, 7}, at::kBool), region_valid = at::ones({3, 5}, at::kBool);
  text_valid[0].slice(0, 4).fill_(false);
  region_valid[0].slice(0, 2).fill_(false);
  const at::Tensor batch = teacher->forward(padded_text, padded_regions, text_valid, region_valid).global;
  EXPECT_LT((batch[0] - alone[0]).abs().max().item<double>(), 1e-5);
  const at::Tensor none = at::zeros({3, 5}, at::kBool);
  EXPECT_THROW(teacher->forward(text, regions, {}, none), sparsescope::Error);
  EXPECT_THROW(teacher->forward(text, regions.slice(2, 0, 32)), sparsescope::Error);
  EXPECT_THROW(sl::dclip_contrastive_loss(tensor("target"), tensor("target").slice(0, 0, 2)), sparsescope::Error);
}
