// The official configurations of models_mae.py and models_lut.py.
#include <map>

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

const std::map<std::string, MaeConfig>& configs() {
  static const std::map<std::string, MaeConfig> all = [] {
    std::map<std::string, MaeConfig> m;
    for (const auto& c : {make("mae_vit_base_patch16", 768, 12, 12, false), make("mae_vit_large_patch16", 1024, 24, 16, false),
                          make("mae_vit_huge_patch14", 1280, 32, 16, false), make("lut_vit_small_patch16", 384, 12, 6, true),
                          make("lut_vit_medium_patch16", 512, 12, 8, true), make("lut_vit_base_patch16", 768, 12, 12, true),
                          make("lut_vit_large_patch16", 1024, 24, 16, true)}) {
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

std::vector<std::string> mae_config_names() {
  std::vector<std::string> names;
  for (const auto& [n, c] : configs()) names.push_back(n);
  return names;
}

}  // namespace sparsescope::vision
