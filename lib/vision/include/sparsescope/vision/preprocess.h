#pragma once
// timm's evaluation transform on decoded images: PIL-compatible resize of the shorter side, center
// crop, ToTensor, Normalize; so that logits match timm's for the same file.
#include <ATen/core/Tensor.h>

#include <array>
#include <vector>

#include "sparsescope/vision/image.h"
#include "sparsescope/vision/resample.h"

namespace sparsescope::vision {

/// timm.data.constants IMAGENET_DEFAULT_MEAN / IMAGENET_DEFAULT_STD.
inline constexpr std::array<float, 3> kImagenetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImagenetStd = {0.229f, 0.224f, 0.225f};

/// timm `transforms_imagenet_eval` (center crop mode) for a square `img_size`:
///   Resize(floor(img_size / crop_pct), interpolation)   shorter side, torchvision rounding
///   CenterCrop(img_size)                                 torchvision offsets (and zero padding)
///   ToTensor(), Normalize(mean, std)                     float32
struct EvalTransform {
  int img_size = 224;
  double crop_pct = 0.875;
  Interpolation interpolation = Interpolation::Bicubic;
  std::array<float, 3> mean = kImagenetMean;
  std::array<float, 3> std = kImagenetStd;

  /// The shorter side after resizing: floor(img_size / crop_pct). Throws on invalid settings.
  int scale_size() const;
};

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
