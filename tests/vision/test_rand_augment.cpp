// RandAugment's ops against timm's (timm.data.auto_augment through Pillow) on a random image, from
// tests/fixtures/rand_augment.safetensors (scripts/fixtures/make_rand_augment_fixtures.py), and the
// draws of rand_augment().
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "sparsescope/vision/rand_augment.h"
#include "sparsescope/vision/safetensors.h"

namespace sv = sparsescope::vision;

namespace {

const std::map<std::string, sv::RandOp>& op_names() {
  static const std::map<std::string, sv::RandOp> names = {
      {"AutoContrast", sv::RandOp::AutoContrast}, {"Equalize", sv::RandOp::Equalize},
      {"Invert", sv::RandOp::Invert},             {"Rotate", sv::RandOp::Rotate},
      {"PosterizeIncreasing", sv::RandOp::Posterize}, {"SolarizeIncreasing", sv::RandOp::Solarize},
      {"SolarizeAdd", sv::RandOp::SolarizeAdd},   {"ColorIncreasing", sv::RandOp::Color},
      {"ContrastIncreasing", sv::RandOp::Contrast}, {"BrightnessIncreasing", sv::RandOp::Brightness},
      {"SharpnessIncreasing", sv::RandOp::Sharpness}, {"ShearX", sv::RandOp::ShearX},
      {"ShearY", sv::RandOp::ShearY},             {"TranslateXRel", sv::RandOp::TranslateX},
      {"TranslateYRel", sv::RandOp::TranslateY}};
  return names;
}

bool geometric(sv::RandOp op) {
  return op == sv::RandOp::Rotate || op == sv::RandOp::ShearX || op == sv::RandOp::ShearY ||
         op == sv::RandOp::TranslateX || op == sv::RandOp::TranslateY;
}

}  // namespace

// The pixel ops equal Pillow's to the level; the geometric ones resample bicubically as Pillow does
// but with torch's kernel (a = -0.75, Pillow's -0.5), so they agree on the fill and the geometry,
// within a few levels on average (on this worst case, a noise image).
TEST(RandAugment, OpsMatchTimmAndPillow) {
  const auto file = sv::load_safetensors(std::string(SPARSESCOPE_FIXTURES_DIR) + "/rand_augment.safetensors");
  std::map<std::string, at::Tensor> t(file.tensors.begin(), file.tensors.end());
  const at::Tensor image = t.at("image").permute({2, 0, 1}).unsqueeze(0).to(at::kFloat).div(255);  // [1, 3, H, W]
  int compared = 0;
  for (const auto& [key, want_hwc] : t) {
    if (key == "image") continue;
    const auto slash = key.find('/'), slash2 = key.rfind('/');
    const sv::RandOp op = op_names().at(key.substr(0, slash));
    const double magnitude = std::stod(key.substr(slash + 1, slash2 - slash - 1));
    const double sign = std::stod(key.substr(slash2 + 1));
    const at::Tensor got = sv::rand_op(op, image, at::full({1}, magnitude), at::full({1}, sign)).mul(255).round();
    const at::Tensor want = want_hwc.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
    const at::Tensor diff = (got - want).abs();
    if (geometric(op)) {
      EXPECT_LT(diff.mean().item<double>(), 4.0) << key;  // measured: at most 3.3 (rotations of noise)
      EXPECT_GT(diff.le(8).to(at::kDouble).mean().item<double>(), 0.9) << key;
    } else {
      EXPECT_EQ(diff.max().item<double>(), 0.0) << key << ": " << diff.gt(0).sum().item<int64_t>() << " pixels differ";
    }
    ++compared;
  }
  EXPECT_EQ(compared, 88);
}

TEST(RandAugment, DrawsTwoOpsPerImageFromTheGenerator) {
  const at::Tensor images = at::rand({64, 3, 16, 16}, at::make_generator<at::CPUGeneratorImpl>(1));
  sv::RandAugmentOptions options;
  at::Generator a = at::make_generator<at::CPUGeneratorImpl>(2), b = at::make_generator<at::CPUGeneratorImpl>(2);
  const at::Tensor x = sv::rand_augment(images, options, a);
  EXPECT_TRUE(at::equal(x, sv::rand_augment(images, options, b)));  // seeded: the same draws
  EXPECT_EQ(x.sizes(), images.sizes());
  EXPECT_TRUE(at::equal(x.mul(255).round(), x.mul(255)));  // uint8 levels
  // With probability 1/4 neither op applies: those images are only quantised.
  const at::Tensor untouched = (x - images.mul(255).round().div(255)).abs().flatten(1).amax(1).eq(0);
  const double share = untouched.to(at::kDouble).mean().item<double>();
  EXPECT_GT(share, 0.1);
  EXPECT_LT(share, 0.45);
  options.prob = 0;
  EXPECT_TRUE(at::equal(sv::rand_augment(images, options, a), images.mul(255).round().div(255)));
}
