#pragma once
// Super-resolution of images of any size in bounded memory: the LR image cut into tiles, each
// upscaled with a margin of context and only its own region kept.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

#include "sparsescope/vision/sr_eval.h"

namespace sparsescope::vision {

/// Upscales `lr` (float32 [1, 3, h, w] on the CPU) by `scale` through `upscale`, tile by tile:
/// tiles of `tile` x `tile` LR pixels, each sent to `device` with `overlap` pixels of context on
/// every side (fewer at the image's border), its SR cropped back to the tile's own region. Memory
/// follows the tile, and the output equals one call on the whole image wherever the model looks no
/// further than `overlap` LR pixels (a model with attention over larger windows differs a little
/// near the tiles' borders). `tile` <= 0, or a tile covering the image, makes one call. Returns
/// float32 [1, 3, scale h, scale w] on the CPU. Throws sparsescope::Error naming a bad argument or an
/// SR output of the wrong size.
at::Tensor upscale_tiled(const Upscaler& upscale, const at::Tensor& lr, int64_t scale, int64_t tile, int64_t overlap,
                         at::Device device);

}  // namespace sparsescope::vision
