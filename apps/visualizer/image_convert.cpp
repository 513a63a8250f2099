#include "image_convert.h"

#include <ATen/ATen.h>

#include "sparsescope/kernels/error.h"

namespace sparsescope::viewer {

QImage to_qimage(const at::Tensor& rgb) {
  SPARSESCOPE_CHECK(rgb.dim() == 3 && rgb.size(2) == 3 && rgb.scalar_type() == at::kByte,
                    "expected a uint8 image tensor [H, W, 3], got ", rgb.sizes(), " ", rgb.scalar_type());
  const at::Tensor pixels = rgb.cpu().contiguous();
  return to_qimage(pixels.data_ptr<uint8_t>(), static_cast<int>(pixels.size(1)), static_cast<int>(pixels.size(0)));
}

QImage to_qimage(const vision::Image& image) { return to_qimage(image.pixels.data(), image.width, image.height); }

QImage to_qimage(const uint8_t* rgb, int width, int height) {
  // RGB32, the raster engine's native format: views scale these images on every paint, and an
  // RGB888 source would be converted each time.
  QImage image(width, height, QImage::Format_RGB32);
  for (int y = 0; y < height; ++y) {
    auto* line = reinterpret_cast<QRgb*>(image.scanLine(y));
    const uint8_t* p = rgb + static_cast<size_t>(y) * width * 3;
    for (int x = 0; x < width; ++x, p += 3) line[x] = qRgb(p[0], p[1], p[2]);
  }
  return image;
}

}  // namespace sparsescope::viewer
