// Decoding against PIL: tests/fixtures/images/decode/ holds PIL's `convert('RGB')` of each input
// (scripts/fixtures/make_image_fixtures.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "image_cases.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"

namespace sv = sparsescope::vision;
namespace fs = std::filesystem;

using sparsescope::test::kImages;
using sparsescope::test::read_cases;

namespace {

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.is_open()) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Expects `fn` to throw sparsescope::Error whose message contains every one of `parts`.
template <typename Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no sparsescope::Error thrown; expected one mentioning '" << parts.front() << "'";
  } catch (const sparsescope::Error& e) {
    for (const auto& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

struct Diff {
  int max = 0;
  double mean = 0;
};

Diff diff(const sv::Image& a, const sv::Image& b) {
  Diff d;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) {
    const int v = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    d.max = std::max(d.max, v);
    d.mean += v;
  }
  d.mean /= static_cast<double>(a.pixels.size());
  return d;
}

}  // namespace

TEST(ImageDecode, MatchesPilConvertRgbExactly) {
  const auto cases = read_cases(kImages / "decode" / "cases.txt");
  ASSERT_GE(cases.size(), 8u);
  int exact = 0;
  for (const auto& c : cases) {
    ASSERT_EQ(c.size(), 2u);
    if (fs::path(c[0]).extension() == ".jpg") continue;  // see JpegCloseToLibjpeg
    SCOPED_TRACE(c[0]);
    const sv::Image ours = sv::read_image((kImages / "inputs" / c[0]).string());
    const sv::Image pil = sv::read_image((kImages / "decode" / c[1]).string());
    ASSERT_EQ(ours.width, pil.width);
    ASSERT_EQ(ours.height, pil.height);
    ASSERT_EQ(ours.pixels.size(), std::size_t(ours.width) * ours.height * 3);
    EXPECT_EQ(diff(ours, pil).max, 0);
    ++exact;
  }
  EXPECT_EQ(exact, 8);
}

// stb's JPEG decoder (its own integer IDCT and YCbCr conversion) is not libjpeg-turbo, which PIL
// uses; the difference is measured here rather than hidden. Measured on the 48x40 q90 4:2:0 photo
// (Pillow 13.0.0 vs Debian stb 2.28): max 3, mean 0.075 levels. The bounds leave room for other
// libjpeg-turbo builds; tests/vision/test_preprocess.cpp measures the same on ImageNet photos.
TEST(ImageDecode, JpegCloseToLibjpeg) {
  const sv::Image ours = sv::read_image((kImages / "inputs" / "astronaut_q90.jpg").string());
  const sv::Image pil = sv::read_image((kImages / "decode" / "astronaut_q90_jpg.png").string());
  ASSERT_EQ(ours.width, pil.width);
  ASSERT_EQ(ours.height, pil.height);
  const Diff d = diff(ours, pil);
  std::printf("stb vs PIL JPEG decode: max abs diff %d, mean abs diff %.3f levels\n", d.max, d.mean);
  RecordProperty("jpeg_max_abs_diff", d.max);
  RecordProperty("jpeg_mean_abs_diff_x1000", static_cast<int>(d.mean * 1000));
  EXPECT_LE(d.mean, 0.5);
  EXPECT_LE(d.max, 8);
}

TEST(ImageDecode, ReportsSourceLayout) {
  struct Row {
    const char* file;
    int channels, bits;
  };
  for (const Row& r : {Row{"camera_gray.png", 1, 8}, Row{"camera_gray_alpha.png", 2, 8},
                       Row{"astronaut_rgba.png", 4, 8}, Row{"astronaut.bmp", 3, 8}, Row{"astronaut.gif", 3, 8},
                       Row{"astronaut_rgb16.png", 3, 16}, Row{"camera_gray16.png", 1, 16}}) {
    const sv::Image image = sv::read_image((kImages / "inputs" / r.file).string());
    EXPECT_EQ(image.source_channels, r.channels) << r.file;
    EXPECT_EQ(image.source_bits, r.bits) << r.file;
    EXPECT_EQ(image.width, 48) << r.file;
    EXPECT_EQ(image.height, 40) << r.file;
  }
}

// The fixture's first 8 columns hold 0, 40, ..., 280: PIL's I;16 -> RGB saturates at 255.
TEST(ImageDecode, Gray16SaturatesLikePil) {
  const sv::Image image = sv::read_image((kImages / "inputs" / "camera_gray16.png").string());
  for (int x = 0; x < 8; ++x) {
    const std::uint8_t* p = image.pixel(x, 5);
    const int expected = std::min(x * 40, 255);
    EXPECT_EQ(p[0], expected) << x;
    EXPECT_EQ(p[1], expected) << x;
    EXPECT_EQ(p[2], expected) << x;
  }
}

// Gray replicated and alpha dropped without compositing: a pixel with alpha 0 keeps its colour.
TEST(ImageDecode, AlphaIsDroppedNotComposited) {
  const sv::Image rgba = sv::read_image((kImages / "inputs" / "astronaut_rgba.png").string());
  const sv::Image bmp = sv::read_image((kImages / "inputs" / "astronaut.bmp").string());
  // The RGBA fixture's alpha ramps from 255 (left) to 0 (right) over the same pixels as the BMP.
  EXPECT_EQ(diff(rgba, bmp).max, 0);
}

TEST(ImageDecode, EmptyInputFails) {
  expect_error([] { sv::decode_image(nullptr, 0, "empty.png"); }, {"image 'empty.png'", "empty"});
  const fs::path path = fs::temp_directory_path() / "sparsescope_empty_image.png";
  std::ofstream(path).close();
  expect_error([&] { sv::read_image(path.string()); }, {path.string(), "empty"});
  fs::remove(path);
}

TEST(ImageDecode, MissingFileAndDirectoryFail) {
  expect_error([] { sv::read_image("/nonexistent/dir/photo.jpg"); }, {"'/nonexistent/dir/photo.jpg'", "cannot open"});
  expect_error([] { sv::read_image(fs::temp_directory_path().string()); }, {"is a folder, not a regular file"});
}

TEST(ImageDecode, NonImageFails) {
  const std::string text = "%PDF-1.7 this is not an image";
  expect_error([&] { sv::decode_image(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), "doc.pdf"); },
               {"image 'doc.pdf'", "not a PNG, JPEG, BMP or GIF", "25 50 44 46"});
  // A TGA has no magic; stb would guess, we refuse.
  const std::vector<std::uint8_t> tga = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 24, 0, 10, 20, 30};
  expect_error([&] { sv::decode_image(tga.data(), tga.size(), "x.tga"); }, {"not a PNG"});
}

TEST(ImageDecode, CorruptDataFailsWithStbReason) {
  auto png = read_bytes(kImages / "inputs" / "chelsea_200x133.png");
  // Break the zlib header at the start of the first IDAT's data.
  const std::string idat = "IDAT";
  const auto at = std::search(png.begin(), png.end(), idat.begin(), idat.end());
  ASSERT_NE(at, png.end());
  at[4] = 0xff;
  expect_error([&] { sv::decode_image(png.data(), png.size(), "bad.png"); }, {"image 'bad.png'", "corrupt PNG", "(stb: "});

  auto jpg = read_bytes(kImages / "inputs" / "astronaut_q90.jpg");
  jpg[3] ^= 0xff;  // first marker's type byte
  EXPECT_THROW(sv::decode_image(jpg.data(), jpg.size(), "bad.jpg"), sparsescope::Error);
}

TEST(ImageDecode, TruncatedFilesFail) {
  for (const char* name : {"astronaut_q90.jpg", "astronaut.gif", "astronaut.bmp", "astronaut_palette.png",
                           "astronaut_rgb16.png", "chelsea_200x133.png"}) {
    const auto bytes = read_bytes(kImages / "inputs" / name);
    for (std::size_t cut : {std::size_t{4}, std::size_t{12}, std::size_t{40}, bytes.size() / 2,
                            bytes.size() * 9 / 10}) {
      SCOPED_TRACE(std::string(name) + " cut at " + std::to_string(cut));
      expect_error([&] { sv::decode_image(bytes.data(), cut, name); }, {std::string("image '") + name + "'"});
    }
  }
  // A PNG chunk that claims more bytes than the file holds is refused before stb sizes a buffer by
  // it (fuzz/fuzz_image found an IDAT of a few bytes claiming 2^30 make stb allocate 2 GB).
  auto png = read_bytes(kImages / "inputs" / "chelsea_200x133.png");
  const std::string idat = "IDAT";
  const auto at = std::search(png.begin(), png.end(), idat.begin(), idat.end());
  ASSERT_NE(at, png.end());
  at[-4] = 0x40, at[-3] = at[-2] = at[-1] = 0;  // its length: 2^30
  expect_error([&] { sv::decode_image(png.data(), png.size(), "huge.png"); },
               {"image 'huge.png'", "truncated PNG", "chunk 'IDAT' of 1073741824 bytes runs past the end"});
  // PIL requires a JPEG's end-of-image marker, and so do we.
  const auto jpg = read_bytes(kImages / "inputs" / "astronaut_q90.jpg");
  expect_error([&] { sv::decode_image(jpg.data(), jpg.size() - 2, "cut.jpg"); }, {"truncated JPEG"});
  // An APP1 segment holding a thumbnail's SOS and EOI must not hide the main image's truncation.
  std::vector<std::uint8_t> exif = {0xff, 0xd8, 0xff, 0xe1, 0x00, 0x0a, 0xff, 0xda, 0x00, 0x02, 0xff, 0xd9, 0x00, 0x00};
  exif.insert(exif.end(), jpg.begin() + 2, jpg.end());
  EXPECT_EQ(sv::decode_image(exif.data(), exif.size(), "exif.jpg").width, 48);
  expect_error([&] { sv::decode_image(exif.data(), exif.size() - 2, "exif.jpg"); }, {"truncated JPEG", "end-of-image"});
}

// The fuzzer's seeds are valid files of every layout (baseline, progressive and gray JPEG among
// them): the structural checks must pass them all.
TEST(ImageDecode, FuzzSeedsDecode) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(SPARSESCOPE_FUZZ_CORPUS_DIR) / "image")) {
    SCOPED_TRACE(entry.path().string());
    const auto bytes = read_bytes(entry.path());
    EXPECT_GT(sv::decode_image(bytes.data(), bytes.size(), entry.path().string()).width, 0);
    ++count;
  }
  EXPECT_GE(count, 14);
}

// [start, end) of each marker segment after the SOI, up to and including the first SOS header.
std::vector<std::pair<std::size_t, std::size_t>> header_segments(const std::vector<std::uint8_t>& jpg) {
  std::vector<std::pair<std::size_t, std::size_t>> segments;
  for (std::size_t pos = 2; pos + 4 <= jpg.size();) {
    const std::size_t end = pos + 2 + (std::size_t(jpg[pos + 2]) << 8 | jpg[pos + 3]);
    segments.emplace_back(pos, end);
    if (jpg[pos + 1] == 0xda) break;
    pos = end;
  }
  return segments;
}

// The byte offset of the first marker segment of type `marker` (after the SOI).
std::size_t find_segment(const std::vector<std::uint8_t>& jpg, std::uint8_t marker) {
  for (const auto& [start, end] : header_segments(jpg)) {
    if (jpg[start + 1] == marker) return start;
  }
  ADD_FAILURE() << "no segment FF " << int(marker);
  return 0;
}

// stb_image 2.27 reads uninitialised memory for these files (a crash under fuzzing); libjpeg
// rejects them, and so must we, before stb sees them.
TEST(ImageDecode, JpegTablesMustBeDefined) {
  const auto jpg = read_bytes(kImages / "inputs" / "astronaut_q90.jpg");
  ASSERT_EQ(sv::decode_image(jpg.data(), jpg.size(), "ok.jpg").width, 48);

  auto undefined = jpg;  // every scan component names DC and AC table 3, which no DHT defines
  const std::size_t sos = find_segment(undefined, 0xda);
  for (int c = 0; c < undefined[sos + 4]; ++c) undefined[sos + 6 + 2 * c] = 0x33;
  expect_error([&] { sv::decode_image(undefined.data(), undefined.size(), "undef.jpg"); },
               {"image 'undef.jpg'", "corrupt JPEG", "DC Huffman table 3", "no DHT segment"});

  auto oversized = jpg;  // 2 x 255 codes of lengths 15 and 16: a valid prefix code, too many symbols
  const std::size_t dht = find_segment(oversized, 0xc4);
  std::fill(oversized.begin() + dht + 5, oversized.begin() + dht + 5 + 14, 0);
  oversized[dht + 5 + 14] = oversized[dht + 5 + 15] = 255;
  expect_error([&] { sv::decode_image(oversized.data(), oversized.size(), "big.jpg"); },
               {"image 'big.jpg'", "corrupt JPEG", "510 symbols (at most 256)"});

  auto no_quant = jpg;  // the DQT segments renamed to COM (comment) segments
  for (const auto& [start, end] : header_segments(no_quant)) {
    if (no_quant[start + 1] == 0xdb) no_quant[start + 1] = 0xfe;
  }
  expect_error([&] { sv::decode_image(no_quant.data(), no_quant.size(), "noq.jpg"); },
               {"image 'noq.jpg'", "corrupt JPEG", "quantisation table 0", "no DQT segment"});
}

// A Motion-JPEG frame carries no Huffman tables: libjpeg-turbo (PIL) decodes it with the standard
// tables of ITU T.81 Annex K, and so do we. PIL writes those same tables into a baseline JPEG (no
// `optimize`), so the file without its DHT segments must decode to exactly the same pixels.
TEST(ImageDecode, JpegWithoutHuffmanTablesUsesTheStandardOnes) {
  for (const fs::path& path : {kImages / "inputs" / "astronaut_q90.jpg",
                               fs::path(SPARSESCOPE_FUZZ_CORPUS_DIR) / "image" / "baseline.jpg",
                               fs::path(SPARSESCOPE_FUZZ_CORPUS_DIR) / "image" / "gray.jpg"}) {
    SCOPED_TRACE(path.string());
    const auto jpg = read_bytes(path);
    std::vector<std::uint8_t> stripped(jpg.begin(), jpg.begin() + 2);
    std::size_t removed = 0;
    for (const auto& [start, end] : header_segments(jpg)) {
      if (jpg[start + 1] == 0xc4) ++removed;
      else stripped.insert(stripped.end(), jpg.begin() + start, jpg.begin() + end);
    }
    stripped.insert(stripped.end(), jpg.begin() + header_segments(jpg).back().second, jpg.end());
    ASSERT_GE(removed, 1u);
    const sv::Image original = sv::decode_image(jpg.data(), jpg.size(), "original.jpg");
    const sv::Image standard = sv::decode_image(stripped.data(), stripped.size(), "mjpeg.jpg");
    EXPECT_EQ(standard.width, original.width);
    EXPECT_EQ(standard.height, original.height);
    EXPECT_EQ(standard.pixels, original.pixels);
  }
}

// stb leaves what no scan decodes uninitialised; such files are refused.
TEST(ImageDecode, JpegScansMustCoverEveryComponent) {
  const auto jpg = read_bytes(kImages / "inputs" / "astronaut_q90.jpg");
  const std::size_t sos = find_segment(jpg, 0xda);
  const std::size_t header = 2 + (std::size_t(jpg[sos + 2]) << 8 | jpg[sos + 3]);
  // The interleaved scan replaced by one of the first component alone, over the same data.
  std::vector<std::uint8_t> one(jpg.begin(), jpg.begin() + sos);
  const std::uint8_t scan[] = {0xff, 0xda, 0x00, 0x08, 0x01, jpg[sos + 5], jpg[sos + 6], 0x00, 0x3f, 0x00};
  one.insert(one.end(), std::begin(scan), std::end(scan));
  one.insert(one.end(), jpg.begin() + sos + header, jpg.end());
  expect_error([&] { sv::decode_image(one.data(), one.size(), "one.jpg"); },
               {"image 'one.jpg'", "corrupt JPEG", "component " + std::to_string(jpg[sos + 7]) + " is in no scan"});

  // A progressive file without its first AC scan of the first component.
  const auto progressive = read_bytes(fs::path(SPARSESCOPE_FUZZ_CORPUS_DIR) / "image" / "progressive.jpg");
  ASSERT_GT(sv::decode_image(progressive.data(), progressive.size(), "p.jpg").width, 0);
  for (std::size_t pos = 2; pos + 4 < progressive.size(); ++pos) {
    if (progressive[pos] != 0xff || progressive[pos + 1] != 0xda) continue;
    const std::size_t count = progressive[pos + 4];
    const std::size_t first = progressive[pos + 5 + 2 * count], refining = progressive[pos + 7 + 2 * count] >> 4;
    if (first == 0 || refining) continue;
    // Past the scan header, to the next marker that is not stuffing or a restart.
    std::size_t next = pos + 2 + (std::size_t(progressive[pos + 2]) << 8 | progressive[pos + 3]);
    while (!(progressive[next] == 0xff && progressive[next + 1] != 0 && (progressive[next + 1] & 0xf8) != 0xd0)) ++next;
    std::vector<std::uint8_t> cut(progressive.begin(), progressive.begin() + pos);
    cut.insert(cut.end(), progressive.begin() + next, progressive.end());
    expect_error([&] { sv::decode_image(cut.data(), cut.size(), "cut.jpg"); },
                 {"image 'cut.jpg'", "corrupt JPEG", "no scan decodes coefficient " + std::to_string(first)});
    return;
  }
  ADD_FAILURE() << "progressive.jpg has no first AC scan";
}

TEST(ImageDecode, HugeDimensionsRejectedBeforeAllocation) {
  // A gray PNG whose IHDR claims 20000 x 20000 (400 megapixels: under stb's own 2^30-byte limit,
  // over ours); stb does not check the IHDR CRC.
  auto png = read_bytes(kImages / "inputs" / "camera_gray.png");
  const std::uint8_t big[4] = {0x00, 0x00, 0x4e, 0x20};
  std::copy(big, big + 4, png.begin() + 16);
  std::copy(big, big + 4, png.begin() + 20);
  expect_error([&] { sv::decode_image(png.data(), png.size(), "bomb.png"); },
               {"image 'bomb.png'", "20000 x 20000", "exceeds the limit"});
  // In RGB the same size is over stb's limit too, which then says only "unknown image type": the
  // header's size is read first.
  auto rgb = read_bytes(kImages / "inputs" / "astronaut_96x96.png");
  std::copy(big, big + 4, rgb.begin() + 16);
  std::copy(big, big + 4, rgb.begin() + 20);
  expect_error([&] { sv::decode_image(rgb.data(), rgb.size(), "bomb_rgb.png"); },
               {"image 'bomb_rgb.png'", "20000 x 20000 pixels exceeds the limit of 268435456 pixels"});
  // The limit is a parameter (the fuzzer uses a small one).
  const auto ok = read_bytes(kImages / "inputs" / "camera_gray.png");
  expect_error([&] { sv::decode_image(ok.data(), ok.size(), "small.png", 100); }, {"48 x 40", "limit of 100"});
  EXPECT_EQ(sv::decode_image(ok.data(), ok.size(), "small.png", 48 * 40).width, 48);
}

TEST(ImageDecode, PngRoundTripAndAtomicWrite) {
  const sv::Image image = sv::read_image((kImages / "inputs" / "astronaut_96x96.png").string());
  const fs::path dir = fs::temp_directory_path() / "sparsescope_test_write_png";
  fs::create_directories(dir);
  const fs::path path = dir / "out.png";
  sv::write_png(path.string(), image);
  const sv::Image back = sv::read_image(path.string());
  EXPECT_EQ(back.width, image.width);
  EXPECT_EQ(back.height, image.height);
  EXPECT_EQ(back.pixels, image.pixels);
  // Only the target remains: the temporary file was renamed, not left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);

  sv::Image broken = image;
  broken.pixels.resize(10);
  expect_error([&] { sv::write_png((dir / "broken.png").string(), broken); }, {"broken.png", "needs"});
  EXPECT_FALSE(fs::exists(dir / "broken.png"));
  expect_error([&] { sv::write_png("/nonexistent/dir/out.png", image); }, {"/nonexistent/dir/out.png"});
  fs::remove_all(dir);
}
