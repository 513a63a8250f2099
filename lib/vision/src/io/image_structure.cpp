// Structural checks made before decoding, for two reasons:
// - Truncation: stb pads a truncated JPEG scan, GIF frame or BMP pixel array with zeros and reports
//   success; PIL raises "image file is truncated". These checks restore PIL's verdict.
// - Memory safety: stb_image 2.27 (Debian 12) allocates what a PNG chunk's length claims before
//   reading it (check_png); it reads uninitialised Huffman tables when a JPEG scan names a table
//   that no DHT segment defined, and overruns its symbol arrays when a table has more than 256
//   symbols; the wild reads crash (all found by fuzz/fuzz_image). As libjpeg-turbo (PIL's
//   decoder) does, missing tables 0 and 1 become the standard tables (Motion-JPEG frames omit
//   them) and missing tables 2 and 3 are refused, as are oversized tables ("Bogus Huffman table
//   definition"). stb also computes pixels from uninitialised memory when a component's
//   quantisation table is missing or when no scan decodes a component (or, progressive, one of its
//   coefficients): refused too, as libjpeg-turbo refuses the first.
// Each check errs on the side of passing: a malformed segment it cannot parse is left to stb, which
// names the fault itself.
#include "image_structure.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <tuple>

#include "jpeg_standard_huffman.h"

namespace sparsescope::vision::detail {
namespace {

std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
std::uint32_t le16(const std::uint8_t* p) { return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8; }
std::uint32_t be32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | std::uint32_t(p[3]);
}

StructureProblem truncated(std::string reason) { return {StructureProblem::Truncated, std::move(reason)}; }
StructureProblem corrupt(std::string reason) { return {StructureProblem::Corrupt, std::move(reason)}; }

// Follows the JPEG's marker segments as stb_image 2.27 does, across every scan (progressive files
// define tables between scans). An EXIF thumbnail inside APP1 has its own SOS and EOI, so only
// segment lengths are followed, never a byte search. Entropy-coded data cannot contain FF followed
// by anything but 00 (stuffing), FF (fill) or a restart marker, so the next marker after a scan is
// found by scanning. stb allocates component planes and progressive coefficients uninitialised, so
// each component must also be covered by the scans: wholly (sequential) or every coefficient
// (progressive).
StructureProblem check_jpeg(const std::uint8_t* data, std::size_t size) {
  struct Component {
    int id = 0, quant = 0;
    std::uint64_t coefficients = 0;  // bit k: coefficient k was decoded by some first scan
  };
  bool huffman[2][4] = {};  // [DC=0 / AC=1][table id]
  bool quant[4] = {};
  Component components[4];
  int component_count = 0;
  bool framed = false, progressive = false, scanned = false, standard_tables = false;
  // Passing, with the standard tables when an earlier scan needs them: stb reads every scan up to
  // the fault it reports, so a later malformed segment must not drop them.
  auto pass = [&] {
    StructureProblem fine;
    fine.standard_huffman_tables = standard_tables;
    return fine;
  };
  auto cut = [&] { return truncated(scanned ? "no end-of-image marker" : "no start-of-scan marker"); };
  std::size_t pos = 2;
  for (;;) {
    if (pos + 2 > size) return cut();
    if (data[pos] != 0xff) {
      if (framed) return pass();  // stb: "expected marker"
      // Before the frame header stb skips padding between segments, looking for the next FF.
      while (pos < size && data[pos] != 0xff) ++pos;
      continue;
    }
    const std::uint8_t marker = data[pos + 1];
    if (marker == 0xd9) break;  // end of image
    if (marker == 0xff) {       // fill byte
      ++pos;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {  // segments without a length
      pos += 2;
      continue;
    }
    if (pos + 4 > size) return cut();
    const std::size_t length = std::size_t(data[pos + 2]) << 8 | data[pos + 3];
    if (length < 2) return pass();
    const std::uint8_t* seg = data + pos + 4;
    const std::size_t seg_len = length - 2;
    const std::size_t end = pos + 2 + length;
    if (end > size) return cut();

    if (marker == 0xc4) {  // DHT: one or more tables
      for (std::size_t p = 0; p + 17 <= seg_len;) {
        const int table_class = seg[p] >> 4, id = seg[p] & 15;
        if (table_class > 1 || id > 3) return pass();
        int symbols = 0;
        for (int i = 1; i <= 16; ++i) symbols += seg[p + i];
        if (symbols > 256) {
          return corrupt(std::string(table_class ? "AC" : "DC") + " Huffman table " + std::to_string(id) +
                         " has " + std::to_string(symbols) + " symbols (at most 256)");
        }
        huffman[table_class][id] = true;
        p += 17 + static_cast<std::size_t>(symbols);
      }
    } else if (marker == 0xdb) {  // DQT: one or more tables of 64 entries, 8 or 16 bits each
      for (std::size_t p = 0; p < seg_len;) {
        const int precision = seg[p] >> 4, id = seg[p] & 15;
        if (precision > 1 || id > 3) return pass();
        quant[id] = true;
        p += 1 + (precision ? 128 : 64);
      }
    } else if (marker >= 0xc0 && marker <= 0xc2 && !framed) {  // SOF0/1/2, the frames stb decodes
      if (seg_len < 6) return pass();
      component_count = seg[5];
      if (component_count > 4 || seg_len < 6 + 3 * std::size_t(component_count)) return pass();
      for (int c = 0; c < component_count; ++c) {
        components[c].id = seg[6 + 3 * c];
        components[c].quant = seg[6 + 3 * c + 2];
      }
      framed = true;
      progressive = marker == 0xc2;
    } else if (marker == 0xda && framed) {  // SOS, then entropy-coded data
      const std::size_t count = seg_len >= 1 ? seg[0] : 0;
      if (count == 0 || seg_len < 4 + 2 * count) return pass();
      const int first = seg[1 + 2 * count], last = std::min<int>(seg[2 + 2 * count], 63);
      const bool refining = (seg[3 + 2 * count] >> 4) != 0;
      const bool needs_dc = !progressive || (first == 0 && !refining), needs_ac = !progressive || first > 0;
      for (std::size_t s = 0; s < count; ++s) {
        const int id = seg[1 + 2 * s], dc = seg[2 + 2 * s] >> 4, ac = seg[2 + 2 * s] & 15;
        Component* component = std::find_if(components, components + component_count,
                                             [&](const Component& c) { return c.id == id; });
        if (component == components + component_count) return pass();  // stb: "bad SOS"
        if (component->quant > 3 || !quant[component->quant]) {
          return corrupt("component " + std::to_string(id) + " uses quantisation table " +
                         std::to_string(component->quant) + ", which no DQT segment before its scan defines");
        }
        for (const auto& [needed, table_class, table] : {std::tuple{needs_dc, 0, dc}, std::tuple{needs_ac, 1, ac}}) {
          if (!needed || (table <= 3 && huffman[table_class][table])) continue;
          if (table > 1) {
            return corrupt(std::string("scan uses ") + (table_class ? "AC" : "DC") + " Huffman table " +
                           std::to_string(table) + ", which no DHT segment before it defines");
          }
          standard_tables = true;
        }
        if (!progressive) {
          component->coefficients = ~std::uint64_t{0};
        } else if (!refining && first <= last) {
          const int top = first == 0 ? 0 : last;  // stb decodes only the DC of a scan starting at 0
          for (int k = first; k <= top; ++k) component->coefficients |= std::uint64_t{1} << k;
        }
      }
      scanned = true;
      std::size_t p = end;
      while (p + 1 < size &&
             !(data[p] == 0xff && data[p + 1] != 0x00 && data[p + 1] != 0xff &&
               !(data[p + 1] >= 0xd0 && data[p + 1] <= 0xd7))) {
        ++p;
      }
      if (p + 1 >= size) return truncated("no end-of-image marker");
      pos = p;
      continue;
    }
    pos = end;
  }
  // At the end-of-image marker: what no scan decoded would come from uninitialised memory.
  for (int c = 0; c < component_count && framed; ++c) {
    const std::uint64_t missing = ~components[c].coefficients;
    if (missing == 0) continue;
    if (!progressive || missing == ~std::uint64_t{0}) {
      return corrupt("component " + std::to_string(components[c].id) + " is in no scan");
    }
    int k = 0;
    while (!(missing >> k & 1)) ++k;
    return corrupt("no scan decodes coefficient " + std::to_string(k) + " of component " +
                   std::to_string(components[c].id));
  }
  return pass();
}

// Follows the chunk lengths up to IEND. stb_image 2.27 grows its IDAT buffer to a chunk's declared
// length (up to 2^30, rounded up to a power of two) before reading the chunk, so a few bytes that
// claim a huge IDAT made it allocate 2 GB (found by fuzz/fuzz_image); a chunk longer than what
// remains of the file is refused first, as PIL's "Truncated File Read". The PNG limit on a chunk is
// 2^31 - 1 bytes.
StructureProblem check_png(const std::uint8_t* data, std::size_t size) {
  for (std::size_t pos = 8; pos + 8 <= size;) {
    const std::uint32_t length = be32(data + pos);
    std::string type(reinterpret_cast<const char*>(data + pos + 4), 4);
    for (char& c : type) c = std::isalpha(static_cast<unsigned char>(c)) ? c : '?';
    if (length > 0x7fffffffu) return corrupt("chunk of " + std::to_string(length) + " bytes (at most 2^31 - 1)");
    if (std::uint64_t(length) + 12 > size - pos) {
      return truncated("chunk '" + type + "' of " + std::to_string(length) + " bytes runs past the end of the file");
    }
    if (type == "IEND") break;
    pos += std::size_t(length) + 12;
  }
  return {};
}

// Walks to the end of the first frame's LZW data: a sub-block chain ended by a 0-length block.
StructureProblem check_gif(const std::uint8_t* data, std::size_t size) {
  if (size < 13) return {};
  std::size_t pos = 13;
  if (data[10] & 0x80) pos += 3u << ((data[10] & 7) + 1);  // global colour table
  auto skip_sub_blocks = [&] {
    while (pos < size && data[pos] != 0) pos += 1 + data[pos];
    if (pos >= size) return false;
    ++pos;
    return true;
  };
  while (pos < size) {
    const std::uint8_t introducer = data[pos];
    if (introducer == 0x21) {  // extension: label, then sub-blocks
      pos += 2;
      if (!skip_sub_blocks()) return truncated("extension block cut short");
    } else if (introducer == 0x2c) {  // image descriptor
      if (pos + 10 > size) return truncated("image descriptor cut short");
      const std::uint8_t flags = data[pos + 9];
      pos += 10;
      if (flags & 0x80) pos += 3u << ((flags & 7) + 1);  // local colour table
      pos += 1;                                          // LZW minimum code size
      if (!skip_sub_blocks()) return truncated("first frame's image data cut short");
      return {};
    } else {
      return {};  // trailer or garbage: stb reports the latter itself
    }
  }
  return truncated("no image data");
}

// The pixel array of an uncompressed bitmap must fit in the file.
StructureProblem check_bmp(const std::uint8_t* data, std::size_t size) {
  if (size < 34) return {};
  const std::uint64_t offset = le32(data + 10);
  const std::uint32_t header = le32(data + 14);
  std::uint64_t width, height, bits, compression;
  if (header == 12) {  // OS/2 BITMAPCOREHEADER
    width = le16(data + 18), height = le16(data + 20), bits = le16(data + 24), compression = 0;
  } else {
    const auto w = static_cast<std::int32_t>(le32(data + 18)), h = static_cast<std::int32_t>(le32(data + 22));
    width = w < 0 ? 0 - std::uint64_t(std::int64_t(w)) : std::uint64_t(w);
    height = h < 0 ? 0 - std::uint64_t(std::int64_t(h)) : std::uint64_t(h);
    bits = le16(data + 28), compression = le32(data + 30);
  }
  // Uncompressed layouts only (BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS); RLE has no fixed size.
  if ((compression == 0 || compression == 3 || compression == 6) && bits <= 32 && width <= (1u << 24) &&
      height <= (1u << 24)) {
    const std::uint64_t row = (width * bits + 31) / 32 * 4;
    const std::uint64_t needed = offset + row * height;
    if (needed > size) {
      return truncated("pixel data needs " + std::to_string(needed) + " bytes, file has " + std::to_string(size));
    }
  }
  return {};
}

}  // namespace

const char* format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::Png: return "PNG";
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Bmp: return "BMP";
    case ImageFormat::Gif: return "GIF";
  }
  return "image";
}

bool sniff_format(const std::uint8_t* data, std::size_t size, ImageFormat& format) {
  auto starts_with = [&](const char* magic, std::size_t n) {
    return size >= n && std::memcmp(data, magic, n) == 0;
  };
  if (starts_with("\x89PNG\r\n\x1a\n", 8)) format = ImageFormat::Png;
  else if (starts_with("\xff\xd8\xff", 3)) format = ImageFormat::Jpeg;
  else if (starts_with("BM", 2)) format = ImageFormat::Bmp;
  else if (starts_with("GIF87a", 6) || starts_with("GIF89a", 6)) format = ImageFormat::Gif;
  else return false;
  return true;
}

std::vector<std::uint8_t> with_standard_huffman_tables(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> patched(data, data + std::min<std::size_t>(size, 2));  // SOI
  patched.insert(patched.end(), std::begin(kStandardHuffmanSegment), std::end(kStandardHuffmanSegment));
  if (size > 2) patched.insert(patched.end(), data + 2, data + size);
  return patched;
}

StructureProblem check_structure(ImageFormat format, const std::uint8_t* data, std::size_t size) {
  switch (format) {
    case ImageFormat::Jpeg: return check_jpeg(data, size);
    case ImageFormat::Gif: return check_gif(data, size);
    case ImageFormat::Bmp: return check_bmp(data, size);
    case ImageFormat::Png: return check_png(data, size);
  }
  return {};
}

bool header_size(ImageFormat format, const std::uint8_t* data, std::size_t size, std::int64_t& width,
                 std::int64_t& height) {
  switch (format) {
    case ImageFormat::Png:  // signature (8), IHDR length and type (8), width, height
      if (size < 24 || std::memcmp(data + 12, "IHDR", 4) != 0) return false;
      width = be32(data + 16);
      height = be32(data + 20);
      return true;
    case ImageFormat::Gif:  // "GIF89a", logical screen width and height
      if (size < 10) return false;
      width = le16(data + 6);
      height = le16(data + 8);
      return true;
    case ImageFormat::Bmp:  // file header (14), info header size, width, height (negative: top-down)
      if (size < 26 || le32(data + 14) < 12) return false;
      if (le32(data + 14) == 12) {
        width = le16(data + 18);
        height = le16(data + 20);
      } else {
        width = static_cast<std::int32_t>(le32(data + 18));
        height = std::abs(static_cast<std::int64_t>(static_cast<std::int32_t>(le32(data + 22))));
      }
      return true;
    case ImageFormat::Jpeg:  // the segments before the frame header: lengths only, no entropy data
      for (std::size_t pos = 2; pos + 4 <= size;) {
        if (data[pos] != 0xff) return false;
        const std::uint8_t marker = data[pos + 1];
        if (marker == 0xff) {
          ++pos;
          continue;
        }
        const std::size_t length = std::size_t(data[pos + 2]) << 8 | data[pos + 3];
        if (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc) {
          if (length < 7 || pos + 9 > size) return false;
          height = std::int64_t(data[pos + 5]) << 8 | data[pos + 6];
          width = std::int64_t(data[pos + 7]) << 8 | data[pos + 8];
          return true;
        }
        if (marker == 0xda || marker == 0xd9 || length < 2) return false;
        pos += 2 + length;
      }
      return false;
  }
  return false;
}

}  // namespace sparsescope::vision::detail
