// Image decoding through Debian's libstb (the shared library holds the implementations, so no
// STB_IMAGE_IMPLEMENTATION here).
//
// Note [RGB conversion]: timm's loaders call PIL's `Image.open(f).convert('RGB')`, and a model's
// logits depend on those exact bytes, so every source layout is converted the way PIL does:
//   gray (L)             -> R = G = B = L
//   gray + alpha (LA)    -> R = G = B = L, alpha dropped (PIL does not composite on a background)
//   RGBA                 -> RGB, alpha dropped
//   16-bit RGB, RGBA, LA -> high byte (PIL unpacks "RGB;16B" etc. keeping the MSB; stb's 16->8
//                           conversion is the same `v >> 8`)
//   16-bit gray          -> min(v, 255): PIL opens it as mode "I;16" and its I;16 -> RGB converter
//                           saturates instead of scaling (checked with Pillow 13)
// Known differences from PIL: stb's JPEG IDCT and colour conversion differ from libjpeg-turbo's by
// a few levels on some pixels (measured in tests/io/test_image_decode.cpp and, on ImageNet photos,
// tests/vision/test_preprocess.cpp); transparent pixels of a GIF's first frame come out black in
// stb, PIL keeps the palette colour of the transparent index. EXIF orientation is ignored by both.
// A JPEG without Huffman tables (a Motion-JPEG frame) decodes with the standard tables in both:
// libjpeg-turbo supplies them, we insert them for stb (image_structure.h).
#include "sparsescope/vision/image.h"

#include <stb_image.h>
#include <stb_image_write.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "image_structure.h"
#include "regular_file.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/atomic_file.h"

namespace sparsescope::vision {
namespace {

std::string leading_bytes(const std::uint8_t* data, std::size_t size) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < std::min<std::size_t>(size, 8); ++i) {
    if (i) out += ' ';
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown failure";
}

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

}  // namespace

Image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                   std::size_t max_pixels) {
  SPARSESCOPE_CHECK(data != nullptr || size == 0, "image '", name, "': null data pointer");
  SPARSESCOPE_CHECK(size > 0, "image '", name, "': empty file");
  SPARSESCOPE_CHECK(size <= static_cast<std::size_t>(INT_MAX), "image '", name, "': file of ", size,
                    " bytes is too large to decode (limit ", INT_MAX, " bytes)");
  detail::ImageFormat format{};
  SPARSESCOPE_CHECK(detail::sniff_format(data, size, format), "image '", name,
                    "': not a PNG, JPEG, BMP or GIF file (starts with bytes ", leading_bytes(data, size),
                    ")");
  const char* fmt = detail::format_name(format);
  const detail::StructureProblem problem = detail::check_structure(format, data, size);
  SPARSESCOPE_CHECK(problem.kind == detail::StructureProblem::None, "image '", name, "': ",
                    problem.kind == detail::StructureProblem::Truncated ? "truncated " : "corrupt ", fmt, " (",
                    problem.reason, ")");
  std::vector<std::uint8_t> patched;
  if (problem.standard_huffman_tables) {
    patched = detail::with_standard_huffman_tables(data, size);
    data = patched.data();
    size = patched.size();
    SPARSESCOPE_CHECK(size <= static_cast<std::size_t>(INT_MAX), "image '", name, "': too large to decode");
  }
  const int len = static_cast<int>(size);

  std::int64_t stated_width = 0, stated_height = 0;
  if (detail::header_size(format, data, size, stated_width, stated_height)) {
    SPARSESCOPE_CHECK(static_cast<double>(stated_width) * static_cast<double>(stated_height) <=
                          static_cast<double>(max_pixels),
                      "image '", name, "': ", stated_width, " x ", stated_height, " pixels exceeds the limit of ",
                      max_pixels, " pixels");
  }
  int width = 0, height = 0, channels = 0;
  SPARSESCOPE_CHECK(stbi_info_from_memory(data, len, &width, &height, &channels), "image '", name,
                    "': corrupt ", fmt, " header (stb: ", stb_reason(), ")");
  SPARSESCOPE_CHECK(width > 0 && height > 0, "image '", name, "': invalid size ", width, " x ", height);
  const std::size_t pixel_count = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
  SPARSESCOPE_CHECK(pixel_count <= max_pixels, "image '", name, "': ", width, " x ", height,
                    " pixels exceeds the limit of ", max_pixels, " pixels");

  const bool sixteen_bit = format == detail::ImageFormat::Png && stbi_is_16_bit_from_memory(data, len);
  Image image;
  image.source_bits = sixteen_bit ? 16 : 8;

  int w = 0, h = 0, n = 0;
  if (sixteen_bit && channels == 1) {
    // See Note [RGB conversion]: PIL saturates 16-bit gray rather than scaling it.
    std::unique_ptr<stbi_us, StbFree> raw(stbi_load_16_from_memory(data, len, &w, &h, &n, 1));
    SPARSESCOPE_CHECK(raw != nullptr, "image '", name, "': corrupt ", fmt, " (stb: ", stb_reason(), ")");
    SPARSESCOPE_CHECK(w == width && h == height, "image '", name, "': decoded size ", w, " x ", h,
                      " differs from the header's ", width, " x ", height);
    image.width = w;
    image.height = h;
    image.source_channels = 1;
    image.pixels.resize(pixel_count * Image::channels);
    for (std::size_t i = 0; i < pixel_count; ++i) {
      const auto v = static_cast<std::uint8_t>(std::min<int>(raw.get()[i], 255));
      std::memset(&image.pixels[i * 3], v, 3);
    }
    return image;
  }

  std::unique_ptr<stbi_uc, StbFree> raw(stbi_load_from_memory(data, len, &w, &h, &n, 0));
  SPARSESCOPE_CHECK(raw != nullptr, "image '", name, "': corrupt ", fmt, " (stb: ", stb_reason(), ")");
  SPARSESCOPE_CHECK(w == width && h == height, "image '", name, "': decoded size ", w, " x ", h,
                    " differs from the header's ", width, " x ", height);
  SPARSESCOPE_CHECK(n >= 1 && n <= 4, "image '", name, "': unsupported channel count ", n);
  image.width = w;
  image.height = h;
  // stb reports 4 channels for every GIF (it expands the palette to RGBA).
  image.source_channels = format == detail::ImageFormat::Gif ? 3 : n;
  image.pixels.resize(pixel_count * Image::channels);
  const stbi_uc* src = raw.get();
  std::uint8_t* dst = image.pixels.data();
  switch (n) {
    case 1:
    case 2:  // gray (+ alpha): replicate gray, drop alpha
      for (std::size_t i = 0; i < pixel_count; ++i) std::memset(dst + i * 3, src[i * n], 3);
      break;
    case 3:
      std::memcpy(dst, src, pixel_count * 3);
      break;
    case 4:  // RGBA: drop alpha
      for (std::size_t i = 0; i < pixel_count; ++i) std::memcpy(dst + i * 3, src + i * 4, 3);
      break;
  }
  return image;
}

Image read_image(const std::string& path, std::size_t max_pixels) {
  io::require_regular_file(path, "image");
  std::ifstream in(path, std::ios::binary);
  SPARSESCOPE_CHECK(in.is_open(), "image '", path, "': cannot open: ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  SPARSESCOPE_CHECK(end >= 0, "image '", path, "': cannot read (not a regular file?)");
  SPARSESCOPE_CHECK(end <= static_cast<std::streamoff>(INT_MAX), "image '", path, "': file of ", end,
                    " bytes is too large to decode (limit ", INT_MAX, " bytes)");
  in.seekg(0, std::ios::beg);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(end));
  if (!bytes.empty()) in.read(reinterpret_cast<char*>(bytes.data()), end);
  SPARSESCOPE_CHECK(in.good() || (bytes.empty() && !in.bad()), "image '", path, "': read error");
  return decode_image(bytes.data(), bytes.size(), path, max_pixels);
}

std::vector<std::uint8_t> encode_png(const Image& image) {
  SPARSESCOPE_CHECK(image.width > 0 && image.height > 0, "encode_png: invalid image size ", image.width,
                    " x ", image.height);
  SPARSESCOPE_CHECK(image.pixels.size() == image.row_bytes() * static_cast<std::size_t>(image.height),
                    "encode_png: ", image.width, " x ", image.height, " RGB image needs ",
                    image.row_bytes() * static_cast<std::size_t>(image.height), " bytes, has ",
                    image.pixels.size());
  SPARSESCOPE_CHECK(image.row_bytes() <= static_cast<std::size_t>(INT_MAX / 2), "encode_png: image of width ",
                    image.width, " is too wide for PNG encoding");
  std::vector<std::uint8_t> out;
  auto append = [](void* context, void* data, int size) {
    auto* bytes = static_cast<std::vector<std::uint8_t>*>(context);
    const auto* p = static_cast<const std::uint8_t*>(data);
    bytes->insert(bytes->end(), p, p + size);
  };
  const int ok = stbi_write_png_to_func(append, &out, image.width, image.height, Image::channels,
                                        image.pixels.data(), static_cast<int>(image.row_bytes()));
  SPARSESCOPE_CHECK(ok != 0 && !out.empty(), "encode_png: PNG encoding of a ", image.width, " x ",
                    image.height, " image failed (out of memory?)");
  return out;
}

void write_png(const std::string& path, const Image& image) {
  std::vector<std::uint8_t> bytes;
  try {
    bytes = encode_png(image);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("cannot write '", path, "': ", e.what());
  }
  write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace sparsescope::vision
