#pragma once
// Pixels from the library's types (uint8 [H, W, 3] tensors, vision::Image) into QImage.
#include <ATen/core/Tensor.h>

#include <QImage>
#include <cstdint>

#include "sparsescope/vision/image.h"

namespace sparsescope::viewer {

/// A deep copy of a uint8 RGB tensor [H, W, 3] (any strides, CPU) as QImage::Format_RGB32.
QImage to_qimage(const at::Tensor& rgb);
QImage to_qimage(const vision::Image& image);
/// Interleaved RGB rows without padding.
QImage to_qimage(const uint8_t* rgb, int width, int height);

}  // namespace sparsescope::viewer
