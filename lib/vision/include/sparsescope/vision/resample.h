#pragma once
// PIL-compatible resizing and torchvision-compatible cropping of 8-bit RGB images (LibTorch-free).
#include <string>

#include "sparsescope/vision/image.h"

namespace sparsescope::vision {

/// The two filters timm models are evaluated with (PIL's Image.BILINEAR and Image.BICUBIC).
enum class Interpolation { Bilinear, Bicubic };

/// "bilinear" / "bicubic" (timm's names); parse throws sparsescope::Error on anything else.
const char* to_string(Interpolation interpolation);
Interpolation parse_interpolation(const std::string& name);

struct Size {
  int width = 0;
  int height = 0;
};

/// Bit-exact equivalent of PIL's `image.resize((width, height), filter)` on an RGB image:
/// separable, antialiased when downscaling (support scaled by the factor), 8-bit fixed point with
/// rounding to uint8 between the horizontal and the vertical pass.
Image resize(const Image& image, int width, int height, Interpolation filter);

/// The output size of torchvision's `Resize(shorter)` (int size): the shorter side becomes
/// `shorter`, the longer one `int(shorter * long / short)`.
Size shorter_side_size(int width, int height, int shorter);

/// torchvision's `Resize(shorter, interpolation)` on a PIL image.
Image resize_shorter_side(const Image& image, int shorter, Interpolation filter);

/// torchvision's `CenterCrop((height, width))` on a PIL image: offsets are
/// `int(round((size - crop) / 2.0))` (round half to even), and a crop larger than the image pads
/// it with black first, the odd pixel going to the right/bottom.
Image center_crop(const Image& image, int width, int height);

}  // namespace sparsescope::vision
