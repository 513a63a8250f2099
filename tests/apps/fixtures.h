#pragma once
// Fixture files that the app tests share.
#include <string>

namespace sparsescope::test {

/// timm's vit_tiny_patch16_224 in float16 (scripts/fixtures/make_vit_fixtures.py).
inline const std::string kVitTinyWeights =
    std::string(SPARSESCOPE_FIXTURES_DIR) + "/vit/vit_tiny_patch16_224.fp16.safetensors";

}  // namespace sparsescope::test
