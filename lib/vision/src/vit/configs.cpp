// The named ViT configurations, as timm defines them (architecture and the default pretrained
// tag's preprocessing). tests/vision/test_vit.cpp checks this table against timm's own values.
#include <algorithm>
#include <map>
#include <sstream>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

namespace {

// timm.data.constants IMAGENET_INCEPTION_MEAN / _STD (the ImageNet ones come with preprocess.h).
constexpr std::array<float, 3> kInceptionMean{0.5f, 0.5f, 0.5f};
constexpr std::array<float, 3> kInceptionStd{0.5f, 0.5f, 0.5f};

enum class Norm { Imagenet, Inception };

ViTConfig make(const std::string& name, int64_t patch, int64_t dim, int64_t heads, int64_t classes, bool distilled,
               Norm norm) {
  ViTConfig c;
  c.name = name;
  c.patch_size = patch;
  c.embed_dim = dim;
  c.num_heads = heads;
  c.num_classes = classes;
  c.distilled = distilled;
  c.eval.img_size = 224;
  c.eval.crop_pct = 0.9;
  c.eval.interpolation = Interpolation::Bicubic;
  c.eval.mean = norm == Norm::Imagenet ? kImagenetMean : kInceptionMean;
  c.eval.std = norm == Norm::Imagenet ? kImagenetStd : kInceptionStd;
  return c;
}

const std::map<std::string, ViTConfig>& registry() {
  static const std::map<std::string, ViTConfig> configs = [] {
    std::map<std::string, ViTConfig> m;
    auto add = [&m](ViTConfig c) { m.emplace(c.name, std::move(c)); };
    // AugReg ImageNet-21k -> 1k weights are timm's defaults for the plain ViT names.
    add(make("vit_tiny_patch16_224", 16, 192, 3, 1000, false, Norm::Inception));
    add(make("vit_small_patch16_224", 16, 384, 6, 1000, false, Norm::Inception));
    add(make("vit_base_patch16_224", 16, 768, 12, 1000, false, Norm::Inception));
    add(make("vit_base_patch8_224", 8, 768, 12, 1000, false, Norm::Inception));
    // timm's only vit_small_patch8_224 weights are DINO's, so the plain name is the backbone.
    add(make("vit_small_patch8_224", 8, 384, 6, 0, false, Norm::Imagenet));
    for (const auto& [size, dim, heads] : {std::tuple{"tiny", 192, 3}, {"small", 384, 6}, {"base", 768, 12}}) {
      add(make(std::string("deit_") + size + "_patch16_224", 16, dim, heads, 1000, false, Norm::Imagenet));
      add(make(std::string("deit_") + size + "_distilled_patch16_224", 16, dim, heads, 1000, true, Norm::Imagenet));
    }
    add(make("vit_small_patch16_224.dino", 16, 384, 6, 0, false, Norm::Imagenet));
    add(make("vit_small_patch8_224.dino", 8, 384, 6, 0, false, Norm::Imagenet));
    add(make("vit_base_patch16_224.dino", 16, 768, 12, 0, false, Norm::Imagenet));
    add(make("vit_base_patch8_224.dino", 8, 768, 12, 0, false, Norm::Imagenet));
    return m;
  }();
  return configs;
}

}  // namespace

std::vector<std::string> vit_config_names() {
  std::vector<std::string> names;
  for (const auto& [name, config] : registry()) names.push_back(name);
  return names;
}

ViTConfig vit_config(const std::string& name) {
  const auto& configs = registry();
  const auto it = configs.find(name);
  if (it == configs.end()) {
    std::ostringstream known;
    for (const auto& n : vit_config_names()) known << (known.tellp() ? ", " : "") << n;
    SPARSESCOPE_FAIL("unknown model '", name, "'; known models: ", known.str());
  }
  return it->second;
}

}  // namespace sparsescope::vision
