#include "sparsescope/vision/gunzip.h"

#include <stb_image.h>

#include <algorithm>
#include <array>
#include <climits>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

constexpr std::uint8_t kFlagHeaderCrc = 0x02, kFlagExtra = 0x04, kFlagName = 0x08, kFlagComment = 0x10;
constexpr std::uint8_t kReservedFlags = 0xe0;
constexpr std::size_t kHeaderSize = 10, kTrailerSize = 8;

std::uint32_t crc32(const std::uint8_t* data, std::size_t size) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xffffffffu;
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}

// Skips a zero-terminated header field starting at `pos`; returns the position after it.
std::size_t skip_string(const std::uint8_t* data, std::size_t end, std::size_t pos, const std::string& name,
                        const char* field) {
  while (pos < end && data[pos] != 0) ++pos;
  SPARSESCOPE_CHECK(pos < end, "'", name, "': gzip header ", field, " is not terminated (truncated file?)");
  return pos + 1;
}

}  // namespace

bool is_gzip(const std::uint8_t* data, std::size_t size) { return size >= 2 && data[0] == 0x1f && data[1] == 0x8b; }

std::vector<std::uint8_t> gunzip(const std::uint8_t* data, std::size_t size, const std::string& name,
                                 std::size_t max_output) {
  SPARSESCOPE_CHECK(is_gzip(data, size), "'", name, "' is not gzip data (no 1f 8b magic)");
  SPARSESCOPE_CHECK(size >= kHeaderSize + kTrailerSize, "'", name, "': gzip file of ", size,
                    " bytes is truncated (a header and trailer alone take 18)");
  SPARSESCOPE_CHECK(data[2] == 8, "'", name, "': unknown gzip compression method ", int{data[2]}, " (only deflate, 8)");
  const std::uint8_t flags = data[3];
  SPARSESCOPE_CHECK((flags & kReservedFlags) == 0, "'", name, "': gzip header has reserved flag bits set (",
                    int{flags}, ")");
  const std::size_t end = size - kTrailerSize;  // the deflate data ends before the trailer
  std::size_t pos = kHeaderSize;
  if (flags & kFlagExtra) {
    SPARSESCOPE_CHECK(pos + 2 <= end, "'", name, "': gzip header extra field is truncated");
    const std::size_t length = std::size_t{data[pos]} | std::size_t{data[pos + 1]} << 8;
    pos += 2;
    SPARSESCOPE_CHECK(length <= end - pos, "'", name, "': gzip header extra field of ", length,
                      " bytes runs past the data");
    pos += length;
  }
  if (flags & kFlagName) pos = skip_string(data, end, pos, name, "file name");
  if (flags & kFlagComment) pos = skip_string(data, end, pos, name, "comment");
  if (flags & kFlagHeaderCrc) pos += 2;
  SPARSESCOPE_CHECK(pos < end, "'", name, "': gzip file holds no compressed data (truncated file?)");
  SPARSESCOPE_CHECK(size - pos <= static_cast<std::size_t>(INT_MAX), "'", name, "': gzip data of ", end - pos,
                    " bytes is too large");

  const std::uint32_t expected_crc = le32(data + end);
  const std::size_t expected_size = le32(data + end + 4);  // modulo 2^32; checked against max_output first
  SPARSESCOPE_CHECK(expected_size <= max_output && expected_size <= static_cast<std::size_t>(INT_MAX), "'", name,
                    "': gzip trailer promises ", expected_size, " bytes, more than the ", max_output,
                    " this reader accepts (corrupt or not the expected file)");
  // Deflate expands data at most 1032-fold, so a larger promise is a corrupt trailer; checked
  // before allocating the promised size.
  SPARSESCOPE_CHECK(expected_size <= (end - pos) * 1032, "'", name, "': gzip trailer promises ", expected_size,
                    " bytes from ", end - pos, " compressed bytes, more than deflate can encode (corrupt file)");
  std::vector<std::uint8_t> out(std::max<std::size_t>(expected_size, 1));
  // Inflating into a buffer of exactly the promised size fails if the stream is longer. The input
  // runs on over the trailer: stb's inflate refuses to decode the last codes of a stream unless 16
  // more bits follow them (PNG's zlib streams always have their Adler-32 there); it stops at the
  // final block and never uses them.
  const int written = stbi_zlib_decode_noheader_buffer(reinterpret_cast<char*>(out.data()),
                                                       static_cast<int>(expected_size),
                                                       reinterpret_cast<const char*>(data + pos),
                                                       static_cast<int>(size - pos));
  SPARSESCOPE_CHECK(written >= 0, "'", name, "': corrupt gzip data (inflate failed: ",
                    stbi_failure_reason() ? stbi_failure_reason() : "unknown reason",
                    "; truncated file or wrong size in the trailer?)");
  SPARSESCOPE_CHECK(static_cast<std::size_t>(written) == expected_size, "'", name, "': gzip data inflates to ",
                    written, " bytes, its trailer says ", expected_size, " (truncated file?)");
  out.resize(expected_size);
  const std::uint32_t crc = crc32(out.data(), out.size());
  SPARSESCOPE_CHECK(crc == expected_crc, "'", name, "': gzip CRC-32 mismatch (data ", crc, ", trailer ",
                    expected_crc, "): the file is corrupt");
  return out;
}

}  // namespace sparsescope::vision
