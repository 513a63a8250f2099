#pragma once
// timm's evaluation transform on decoded images: PIL-compatible resize of the shorter side, center
// crop, ToTensor, Normalize; so that logits match timm's for the same file.
#include <ATen/core/Tensor.h>

#include <vector>

#include "sparsescope/vision/eval_transform.h"
#include "sparsescope/vision/image.h"

namespace sparsescope::vision {

/// The resize and crop steps only: the uint8 RGB image the model sees (img_size x img_size).
Image eval_geometry(const Image& image, const EvalTransform& transform = {});

/// The whole transform: float32 CPU tensor [3, img_size, img_size].
at::Tensor eval_transform(const Image& image, const EvalTransform& transform = {});

/// eval_transform of each image, stacked: [B, 3, img_size, img_size]. Throws on an empty batch.
at::Tensor eval_transform_batch(const std::vector<Image>& images, const EvalTransform& transform = {});

/// ToTensor + Normalize of an already cropped image: [3, H, W] float32, computed with the same
/// float32 operations as torchvision (x / 255, then (x - mean) / std).
at::Tensor normalize_image(const Image& image, const std::array<float, 3>& mean = kImagenetMean,
                           const std::array<float, 3>& std = kImagenetStd);

/// The pixels as a uint8 CPU tensor [H, W, 3] (a copy), and back (any uint8 [H, W, 3] tensor).
at::Tensor image_to_tensor(const Image& image);
Image tensor_to_image(const at::Tensor& hwc);

}  // namespace sparsescope::vision
