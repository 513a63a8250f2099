// What an image file must satisfy before its bytes reach stb_image: the format by its magic, and
// the structural checks that Debian's stb_image 2.27 does not make itself (see image_structure.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sparsescope::vision::detail {

enum class ImageFormat { Png, Jpeg, Bmp, Gif };

const char* format_name(ImageFormat format);

// The format by its magic bytes; false for anything else (stb would also try TGA, which has no
// magic, on arbitrary bytes).
bool sniff_format(const std::uint8_t* data, std::size_t size, ImageFormat& format);

struct StructureProblem {
  enum Kind { None, Truncated, Corrupt } kind = None;
  std::string reason;
};

StructureProblem check_structure(ImageFormat format, const std::uint8_t* data, std::size_t size);

}  // namespace sparsescope::vision::detail
