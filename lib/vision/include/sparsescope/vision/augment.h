#pragma once
// Training-time augmentation of whole batches on their device. The random numbers come from a CPU
// generator, so a seeded run draws the same augmentations on every device.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sparsescope::vision {

struct AugmentOptions {
  double scale_min = 1.0;        ///< RandomResizedCrop area fraction range; [1, 1] turns it off
  double scale_max = 1.0;
  double ratio_min = 3.0 / 4.0;  ///< RandomResizedCrop aspect-ratio range
  double ratio_max = 4.0 / 3.0;
  int64_t pad = 0;               ///< random shift by up to `pad` pixels, zero fill (RandomCrop(padding))
  bool hflip = true;             ///< horizontal flip with probability 1/2
  double erase_prob = 0.0;       ///< RandomErasing probability (timm, mode 'const', one box)
};

/// The geometric part, on images [B, C, H, W] in [0, 1]: per image a RandomResizedCrop box
/// (torchvision's sampling: ten tries, then the central crop), shifted by the random padding
/// offset, mirrored with the flip, and resampled to H x W by one grid_sample: bilinear when crops
/// are rescaled, nearest otherwise, so that shifts and flips move pixels exactly. Pixels from
/// outside the image are 0, as RandomCrop's padding. Unlike torchvision, rescaling does not
/// antialias. Returns a new tensor; `images` is left alone.
at::Tensor augment_geometry(const at::Tensor& images, const AugmentOptions& options, at::Generator& gen);

/// timm's RandomErasing(probability, max_count=1) on normalised images [B, C, H, W]: per image
/// with `probability`, a box of 2% to 1/3 of the area with aspect ratio in [0.3, 1/0.3] (ten tries)
/// is set to 0 across channels (mode 'const'), or with `pixel_fill` to values drawn from N(0, 1)
/// per pixel and channel (mode 'pixel', MAE's fine-tuning). Returns a new tensor.
at::Tensor random_erase(const at::Tensor& images, double probability, at::Generator& gen, bool pixel_fill = false);

}  // namespace sparsescope::vision
