#pragma once
// The small MAE the tests run: 32 x 32 images in 8 x 8 patches of 4 pixels, a 48-wide encoder of
// two blocks (3 heads), a 32-wide decoder (4 heads), norm_pix_loss; the official fixtures
// (scripts/fixtures/make_mae_fixtures.py) were made with these sizes.
#include <cstdint>
#include <string>

#include "sparsescope/vision/mae.h"

namespace sparsescope::test {

inline vision::MaeConfig mae_small(const std::string& name = "mae_small", int64_t decoder_depth = 2) {
  vision::MaeConfig c;
  c.name = name;
  c.img_size = 32;
  c.patch_size = 4;
  c.embed_dim = 48;
  c.depth = 2;
  c.num_heads = 3;
  c.decoder_embed_dim = 32;
  c.decoder_depth = decoder_depth;
  c.decoder_num_heads = 4;
  c.norm_pix_loss = true;
  return c;
}

}  // namespace sparsescope::test
