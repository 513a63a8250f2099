#pragma once
// The ViTConfig of a parity fixture, from the "config" JSON that scripts/fixtures/make_vit_fixtures.py
// writes into the fixture's safetensors metadata.
#include <nlohmann/json.hpp>

#include "sparsescope/vision/vit.h"

namespace sparsescope::testing {

inline vision::ViTConfig fixture_vit_config(const nlohmann::json& j) {
  vision::ViTConfig c;
  c.name = "fixture";
  c.img_size = j["img_size"];
  c.patch_size = j["patch_size"];
  c.embed_dim = j["embed_dim"];
  c.depth = j["depth"];
  c.num_heads = j["num_heads"];
  c.num_classes = j["num_classes"];
  c.distilled = j["distilled"];
  return c;
}

}  // namespace sparsescope::testing
