#pragma once
// What a ViT-family model is fed for an image, for any input channel count it takes (3 for the
// ImageNet models, 1 for gray models such as the bundled Fashion-MNIST classifier).
#include <ATen/core/Tensor.h>

#include "sparsescope/vision/image.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

/// PIL's `convert('L')` (ITU-R 601-2 luma in Pillow's fixed point), kept as an RGB image with
/// R = G = B; gray images come back unchanged.
Image to_gray(const Image& image);

/// The pixels the model of `config` sees: eval_geometry with its eval transform, after to_gray for
/// one-channel models (gray first, as a torchvision pipeline on an 'L' image resizes in gray).
/// uint8 CPU tensor [in_chans, S, S]. Throws for in_chans other than 1 and 3.
at::Tensor vit_pixels(const Image& image, const ViTConfig& config);

/// ToTensor + Normalize of uint8 pixels [..., C, H, W] (C = 1 uses mean[0] and std[0]) on their
/// device, with the same float32 operations as normalize_image: float32 [..., C, H, W].
at::Tensor normalize_pixels(const at::Tensor& pixels, const EvalTransform& transform);

/// The Normalize step alone, on float pixels in [0, 1] [..., C, H, W] (batches after augmentation):
/// (x - mean) / std per channel, float32, on their device; normalize_pixels ends with it.
at::Tensor normalize_unit_pixels(const at::Tensor& pixels, const EvalTransform& transform);

/// The model input for one image: normalize_pixels(vit_pixels(image, config)), float32
/// [in_chans, S, S]; the same values as eval_transform for three-channel models.
at::Tensor vit_input(const Image& image, const ViTConfig& config);

}  // namespace sparsescope::vision
