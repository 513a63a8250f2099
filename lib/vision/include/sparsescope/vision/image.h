#pragma once
// 8-bit RGB images in and out of files, free of LibTorch (the fuzzed, sanitized file-format core).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sparsescope::vision {

/// Pixels are row-major, interleaved RGB (3 bytes per pixel, no row padding).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // width * height * 3
  int source_channels = 3;           // as stored in the file: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  int source_bits = 8;               // 8, or 16 for 16-bit PNGs

  static constexpr int channels = 3;
  std::size_t row_bytes() const { return static_cast<std::size_t>(width) * channels; }
  std::uint8_t* pixel(int x, int y) { return pixels.data() + y * row_bytes() + x * channels; }
  const std::uint8_t* pixel(int x, int y) const { return pixels.data() + y * row_bytes() + x * channels; }
};

/// Largest decoded image accepted (width * height); guards against files whose header promises
/// gigapixels that would be allocated before the pixel data is found missing.
inline constexpr std::size_t kMaxImagePixels = std::size_t{1} << 28;

/// Decodes PNG, JPEG, BMP or GIF (first frame) and converts to RGB as PIL's `convert('RGB')`
/// does: gray is replicated, alpha is dropped (not composited), 16-bit RGB(A) and gray+alpha keep
/// the high byte, 16-bit gray saturates at 255. `name` is used in error messages only.
/// Throws sparsescope::Error naming `name` and the decoder's reason.
Image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                   std::size_t max_pixels = kMaxImagePixels);

/// Reads and decodes the file at `path` (see decode_image).
Image read_image(const std::string& path, std::size_t max_pixels = kMaxImagePixels);

/// Encodes `image` as PNG in memory.
std::vector<std::uint8_t> encode_png(const Image& image);

/// Writes `image` as PNG through a temporary file renamed into place.
void write_png(const std::string& path, const Image& image);

}  // namespace sparsescope::vision
