#pragma once
// LUT's two views of an image (main_lut.py TwoGlobalViewAugmentation), batched on the images'
// device with every random choice drawn from one CPU generator.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <utility>

namespace sparsescope::vision::detail {

/// images [B, 3, H, W] in [0, 1] -> {view 1, view 2}, each in [0, 1]. Both views: RandomCrop with
/// 4 pixels of reflect padding and a horizontal flip (drawn per view). View 2 then: ColorJitter
/// (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1, in a random order per image) with
/// probability 0.8, and one of grayscale, solarisation (values >= 128/255 inverted) and a Gaussian
/// blur of radius U(0.1, 2) (sigma = radius). torchvision's formulas on float pixels, where the
/// official pipeline works on 8-bit PIL images; PIL's blur is a box approximation of the Gaussian.
std::pair<at::Tensor, at::Tensor> lut_views(const at::Tensor& images, at::Generator& gen);

}  // namespace sparsescope::vision::detail
