#pragma once
// How a model expects its images (LibTorch-free, so that configurations and model cards can be
// described without tensors): timm's eval transform settings.
#include <array>

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

}  // namespace sparsescope::vision
