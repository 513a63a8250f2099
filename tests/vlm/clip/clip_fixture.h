#pragma once
// The CLIP fixture (scripts/fixtures/make_clip_fixtures.py) and the deterministic weights and images
// that both it and the tests compute.
#include <ATen/ATen.h>

#include <string>

#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vlm/clip.h"
#include "sine_weights.h"

namespace sparsescope::test {

inline const vision::SafetensorsFile& clip_fixture() {
  static const vision::SafetensorsFile file =
      vision::load_safetensors(std::string(SPARSESCOPE_FIXTURES_DIR) + "/clip/clip.safetensors");
  return file;
}

inline at::Tensor clip_tensor(const std::string& name) { return fixture_tensor(clip_fixture(), name); }

/// The fixture's weights (sine_weights.h), LayerNorm weights around 1.
inline void clip_sine_weights(vlm::CLIP& model) {
  sine_weights(*model, [](const std::string& name) {
    for (const char* ln : {".ln_1.weight", ".ln_2.weight", "ln_final.weight", "ln_pre.weight", "ln_post.weight"}) {
      if (ends_with(name, ln)) return true;
    }
    return false;
  });
}

/// The fixture's images: 1.5 sin(0.013 i) over the flat index of [batch, 3, size, size].
inline at::Tensor clip_images(int64_t batch, int64_t size) {
  return (1.5 * at::sin(0.013 * at::arange(batch * 3 * size * size, at::kDouble))).view({batch, 3, size, size}).to(at::kFloat);
}

}  // namespace sparsescope::test
