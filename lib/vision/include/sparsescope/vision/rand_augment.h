#pragma once
// timm's RandAugment as MAE's fine-tuning configures it ("rand-m9-mstd0.5-inc1": two of the
// fifteen 'increasing' ops per image, each applied with probability 1/2 at a magnitude drawn from
// N(9, 0.5) clipped to [0, 10]), on whole batches on their device. The ops follow PIL's definitions
// (ImageOps, ImageEnhance, Image.transform) on uint8-valued pixels; the geometric ones resample with
// grid_sample (bicubic), where PIL's affine resampling rounds differently at edges.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

namespace sparsescope::vision {

/// The ops, in timm's _RAND_INCREASING_TRANSFORMS order.
enum class RandOp {
  AutoContrast, Equalize, Invert, Rotate, Posterize, Solarize, SolarizeAdd, Color, Contrast, Brightness,
  Sharpness, ShearX, ShearY, TranslateX, TranslateY
};
inline constexpr int kRandOps = 15;

struct RandAugmentOptions {
  int layers = 2;                  ///< ops per image
  double magnitude = 9;            ///< of 10
  double magnitude_std = 0.5;      ///< per application; 0: fixed
  double prob = 0.5;               ///< of applying each chosen op
  std::array<float, 3> fill = {124.0f / 255, 116.0f / 255, 104.0f / 255};  ///< round(255 * ImageNet mean)
  double translate_pct = 0.45;     ///< TranslateXRel / YRel at magnitude 10
};

/// One op on images [B, 3, H, W] with values in [0, 1] (uint8 levels after rounding) at per-image
/// magnitudes [B] (0-10) and signs [B] (+1 or -1, for the ops that take one). Returns new images
/// on uint8 levels. Exposed for tests; rand_augment() draws and applies.
at::Tensor rand_op(RandOp op, const at::Tensor& images, const at::Tensor& magnitudes, const at::Tensor& signs,
                   const RandAugmentOptions& options = {});

/// RandAugment on images [B, 3, H, W] in [0, 1]: per image and layer, an op chosen uniformly (with
/// replacement), applied with probability `prob` at magnitude N(magnitude, magnitude_std) clipped to
/// [0, 10] and a random sign, all drawn from `gen`. Returns new images on uint8 levels.
at::Tensor rand_augment(const at::Tensor& images, const RandAugmentOptions& options, at::Generator& gen);

}  // namespace sparsescope::vision
