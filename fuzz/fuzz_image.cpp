// libFuzzer entry over the image decoder, then through resize and center crop so that the
// resampler sees every size and layout the decoder can produce.
#include <cstddef>
#include <cstdint>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/resample.h"

namespace sv = sparsescope::vision;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A smaller pixel limit than the default keeps every accepted input under libFuzzer's 2 GB
  // memory limit (stb holds the file's layout plus our RGB copy) and each run fast.
  constexpr std::size_t kFuzzMaxPixels = std::size_t{1} << 20;
  sv::Image image;
  try {
    image = sv::decode_image(data, size, "fuzz-input", kFuzzMaxPixels);
  } catch (const sparsescope::Error&) {
    return 0;
  }
  if (image.pixels.size() != image.row_bytes() * static_cast<std::size_t>(image.height)) __builtin_trap();
  // The output size comes from the input's last bytes: downscales, upscales and odd sizes.
  const std::uint8_t a = data[size - 1], b = size > 1 ? data[size - 2] : 0;
  const int width = 1 + a % 48, height = 1 + b % 48;
  const auto filter = (a ^ b) & 1 ? sv::Interpolation::Bicubic : sv::Interpolation::Bilinear;
  const sv::Image small = sv::resize(image, width, height, filter);
  if (small.width != width || small.height != height) __builtin_trap();
  const sv::Image cropped = sv::center_crop(small, 1 + b % 64, 1 + a % 64);
  if (cropped.pixels.size() != cropped.row_bytes() * static_cast<std::size_t>(cropped.height)) __builtin_trap();
  return 0;
}
