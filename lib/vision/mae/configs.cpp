// The official configurations of models_mae.py and models_lut.py, ours for 32 x 32 images, and the
// configuration as JSON (the model card).
#include <map>
#include <nlohmann/json.hpp>

#include "../src/json_field.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/mae.h"

namespace sparsescope::vision {

namespace {

MaeConfig make(const std::string& name, int64_t dim, int64_t depth, int64_t heads, bool lut) {
  MaeConfig c;
  c.name = name;
  c.patch_size = name.find("huge") != std::string::npos ? 14 : 16;
  c.embed_dim = dim;
  c.depth = depth;
  c.num_heads = heads;
  if (lut) c.depth_head = c.depth_pred = 2;
  return c;
}

// Ours for 32 x 32 images (CIFAR-10): ViT-Tiny's encoder on 8 x 8 patches of 4 x 4 pixels, a decoder
// of 4 blocks 128 wide, the LUT heads 1024 wide.
MaeConfig tiny_32(const std::string& name, bool lut) {
  MaeConfig c = make(name, 192, 12, 3, lut);
  c.img_size = 32;
  c.patch_size = 4;
  c.decoder_embed_dim = 128;
  c.decoder_depth = 4;
  c.decoder_num_heads = 4;
  c.norm_pix_loss = true;
  c.head_mlp_dim = 1024;
  return c;
}

const std::map<std::string, MaeConfig>& configs() {
  static const std::map<std::string, MaeConfig> all = [] {
    std::map<std::string, MaeConfig> m;
    for (const auto& c : {make("mae_vit_base_patch16", 768, 12, 12, false), make("mae_vit_large_patch16", 1024, 24, 16, false),
                          make("mae_vit_huge_patch14", 1280, 32, 16, false), make("lut_vit_small_patch16", 384, 12, 6, true),
                          make("lut_vit_medium_patch16", 512, 12, 8, true), make("lut_vit_base_patch16", 768, 12, 12, true),
                          make("lut_vit_large_patch16", 1024, 24, 16, true), tiny_32("mae_vit_tiny_patch4_32", false),
          tiny_32("lut_vit_tiny_patch4_32", true)}) {
      m[c.name] = c;
    }
    return m;
  }();
  return all;
}

}  // namespace

MaeConfig mae_config(const std::string& name) {
  const auto it = configs().find(name);
  if (it != configs().end()) return it->second;
  std::string known;
  for (const auto& [n, c] : configs()) known += (known.empty() ? "" : ", ") + n;
  SPARSESCOPE_FAIL("unknown MAE configuration '", name, "'; known: ", known);
}

std::string mae_config_json(const MaeConfig& c) {
  return nlohmann::json{{"name", c.name},
                        {"img_size", c.img_size},
                        {"patch_size", c.patch_size},
                        {"in_chans", c.in_chans},
                        {"embed_dim", c.embed_dim},
                        {"depth", c.depth},
                        {"num_heads", c.num_heads},
                        {"decoder_embed_dim", c.decoder_embed_dim},
                        {"decoder_depth", c.decoder_depth},
                        {"decoder_num_heads", c.decoder_num_heads},
                        {"mlp_ratio", c.mlp_ratio},
                        {"norm_eps", c.norm_eps},
                        {"norm_pix_loss", c.norm_pix_loss},
                        {"depth_head", c.depth_head},
                        {"depth_pred", c.depth_pred},
                        {"head_mlp_dim", c.head_mlp_dim},
                        {"head_norm", c.head_norm},
                        {"head_act", c.head_act}}
      .dump();
}

MaeConfig mae_config_from_json(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  SPARSESCOPE_CHECK(j.is_object(), "MAE model card: not a JSON object");
  MaeConfig c;
  auto get = [&j](const char* key, auto& field) { detail::json_field(j, key, field, "MAE model card"); };
  get("name", c.name);
  get("img_size", c.img_size);
  get("patch_size", c.patch_size);
  get("in_chans", c.in_chans);
  get("embed_dim", c.embed_dim);
  get("depth", c.depth);
  get("num_heads", c.num_heads);
  get("decoder_embed_dim", c.decoder_embed_dim);
  get("decoder_depth", c.decoder_depth);
  get("decoder_num_heads", c.decoder_num_heads);
  get("mlp_ratio", c.mlp_ratio);
  get("norm_eps", c.norm_eps);
  get("norm_pix_loss", c.norm_pix_loss);
  get("depth_head", c.depth_head);
  get("depth_pred", c.depth_pred);
  get("head_mlp_dim", c.head_mlp_dim);
  get("head_norm", c.head_norm);
  get("head_act", c.head_act);
  return c;
}

std::vector<std::string> mae_config_names() {
  std::vector<std::string> names;
  for (const auto& [n, c] : configs()) names.push_back(n);
  return names;
}

}  // namespace sparsescope::vision
