// What an image file must satisfy before its bytes reach stb_image: the format by its magic, and
// the structural checks that Debian's stb_image 2.27 does not make itself (see image_structure.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sparsescope::vision::detail {

enum class ImageFormat { Png, Jpeg, Bmp, Gif };

const char* format_name(ImageFormat format);

// The format by its magic bytes; false for anything else (stb would also try TGA, which has no
// magic, on arbitrary bytes).
bool sniff_format(const std::uint8_t* data, std::size_t size, ImageFormat& format);

struct StructureProblem {
  enum Kind { None, Truncated, Corrupt } kind = None;
  std::string reason;
  /// A JPEG whose scans use Huffman table 0 or 1 without defining it (Motion-JPEG): decode it with
  /// the standard tables, as libjpeg-turbo does (with_standard_huffman_tables).
  bool standard_huffman_tables = false;
};

StructureProblem check_structure(ImageFormat format, const std::uint8_t* data, std::size_t size);

/// Width and height as the file's header states them (PNG IHDR, GIF screen, BMP info header, JPEG
/// frame header), read before stb, which refuses images over 2^30 bytes as "unknown image type";
/// false when the header cannot be read.
bool header_size(ImageFormat format, const std::uint8_t* data, std::size_t size, std::int64_t& width,
                 std::int64_t& height);

/// The JPEG with a DHT segment of the standard tables right after its SOI marker; the file's own
/// tables, wherever they are, still override them.
std::vector<std::uint8_t> with_standard_huffman_tables(const std::uint8_t* data, std::size_t size);

}  // namespace sparsescope::vision::detail
