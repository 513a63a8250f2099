#pragma once
// What a user does with a pretrained MAE besides fine-tuning it: load it, mask an image and look at
// the reconstruction, and record the encoder's attention over the visible patches and the
// decoder's over all of them (`sparsescope reconstruct`, the viewer).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "sparsescope/vision/image.h"
#include "sparsescope/vision/mae.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::vision {

/// MAE or MAE-LUT weights: ours (safetensors with the kMaeCardKey card) or the official
/// checkpoints (facebookresearch/mae's .pth, whose "model" holds the state dict) with `name`
/// naming their configuration. CPU, float32, eval mode. Throws sparsescope::Error naming the file
/// (and the card it lacks: the weights of another task) or the keys that do not fit.
MaskedAutoencoder load_mae(const std::string& path, const std::string& name = "");

struct MaeReconstruction {
  at::Tensor original;        ///< uint8 [S, S, 3]: the image at the model's size
  at::Tensor masked;          ///< uint8 [S, S, 3]: the same with its removed patches grey
  at::Tensor reconstruction;  ///< uint8 [S, S, 3]: the prediction in the removed patches, the image in the others
  at::Tensor mask;            ///< float32 [L]: 1 for a removed patch
  double loss = 0;            ///< the model's loss on this image (over the removed patches)
};

/// One image through `model`: resized (shorter side, bicubic) and centre-cropped to the model's
/// size, normalised with ImageNet's mean and std as pretraining does, `mask_ratio` of its patches
/// removed by the masking noise of `seed`. A model trained with norm_pix_loss predicts each patch
/// normalised by its own mean and variance: they are taken from the image to show it. With `trace`,
/// the forward pass is recorded into it: the layout's grid with the visible patches
/// (TokenLayout::visible), sites blocks.<i>.attn over the visible tokens and decoder_blocks.<i>.attn
/// over all, the masked image as its picture. Throws sparsescope::Error for a ratio outside (0, 1)
/// or one that leaves no patch visible.
MaeReconstruction reconstruct_mae(MaskedAutoencoder& model, const Image& image, double mask_ratio, uint64_t seed,
                                  Trace* trace = nullptr, const std::string& input = "");

}  // namespace sparsescope::vision
