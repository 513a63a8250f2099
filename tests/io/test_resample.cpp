// Resizing against PIL: tests/fixtures/images/resize/ holds Pillow's `Image.resize` of lossless
// PNG photos (scripts/fixtures/make_image_fixtures.py); the C++ result must be bit-identical.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "image_cases.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/resample.h"

namespace sv = sparsescope::vision;
namespace fs = std::filesystem;

using sparsescope::test::kImages;
using sparsescope::test::read_cases;

namespace {

// Pixel (x, y) = (x, y, x ^ y): every position is identifiable after a crop.
sv::Image coordinate_image(int width, int height) {
  sv::Image image;
  image.width = width;
  image.height = height;
  image.pixels.resize(std::size_t(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      std::uint8_t* p = image.pixel(x, y);
      p[0] = static_cast<std::uint8_t>(x);
      p[1] = static_cast<std::uint8_t>(y);
      p[2] = static_cast<std::uint8_t>(x ^ y);
    }
  return image;
}

sv::Image solid(int width, int height, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  sv::Image image;
  image.width = width;
  image.height = height;
  image.pixels.resize(std::size_t(width) * height * 3);
  for (std::size_t i = 0; i < image.pixels.size(); i += 3) {
    image.pixels[i] = r;
    image.pixels[i + 1] = g;
    image.pixels[i + 2] = b;
  }
  return image;
}

}  // namespace

TEST(ResamplePil, MatchesPilResizeExactly) {
  const auto cases = read_cases(kImages / "resize" / "cases.txt");
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    ASSERT_EQ(c.size(), 5u);
    SCOPED_TRACE(c[4]);
    const sv::Image input = sv::read_image((kImages / "inputs" / c[0]).string());
    const sv::Image expected = sv::read_image((kImages / "resize" / c[4]).string());
    const sv::Image ours = sv::resize(input, std::stoi(c[1]), std::stoi(c[2]), sv::parse_interpolation(c[3]));
    ASSERT_EQ(ours.width, expected.width);
    ASSERT_EQ(ours.height, expected.height);
    int max_diff = 0;
    std::size_t differing = 0;
    for (std::size_t i = 0; i < ours.pixels.size(); ++i) {
      const int d = std::abs(int(ours.pixels[i]) - int(expected.pixels[i]));
      max_diff = std::max(max_diff, d);
      differing += d != 0;
    }
    std::printf("resize %-45s max abs diff %d (%zu of %zu values differ)\n", c[4].c_str(), max_diff, differing,
                ours.pixels.size());
    EXPECT_EQ(max_diff, 0);
  }
}

TEST(Resample, SameSizeIsACopy) {
  const sv::Image image = coordinate_image(17, 9);
  for (auto f : {sv::Interpolation::Bilinear, sv::Interpolation::Bicubic})
    EXPECT_EQ(sv::resize(image, 17, 9, f).pixels, image.pixels);
}

// Normalised weights: a flat image stays flat at every scale, including the edges where the
// window is clipped and bicubic's negative lobes are cut off.
TEST(Resample, ConstantImageStaysConstant) {
  const sv::Image image = solid(23, 11, 7, 128, 255);
  for (auto f : {sv::Interpolation::Bilinear, sv::Interpolation::Bicubic})
    for (auto [w, h] : {std::pair{1, 1}, {5, 3}, {23, 40}, {100, 11}, {64, 64}}) {
      const sv::Image out = sv::resize(image, w, h, f);
      ASSERT_EQ(out.pixels.size(), std::size_t(w) * h * 3);
      for (int i = 0; i < w * h; ++i) {
        ASSERT_EQ(out.pixels[i * 3 + 0], 7) << w << "x" << h;
        ASSERT_EQ(out.pixels[i * 3 + 1], 128) << w << "x" << h;
        ASSERT_EQ(out.pixels[i * 3 + 2], 255) << w << "x" << h;
      }
    }
}

// Bicubic overshoots at a hard edge; the fixed-point result must clip, not wrap.
TEST(Resample, BicubicOvershootIsClipped) {
  sv::Image image = solid(8, 1, 0, 0, 0);
  for (int x = 4; x < 8; ++x) image.pixel(x, 0)[0] = image.pixel(x, 0)[1] = image.pixel(x, 0)[2] = 255;
  const sv::Image out = sv::resize(image, 32, 1, sv::Interpolation::Bicubic);
  EXPECT_EQ(out.pixel(0, 0)[0], 0);
  EXPECT_EQ(out.pixel(31, 0)[0], 255);
  // Monotone except for the clipped overshoot: no value wraps around to the other end.
  for (int x = 1; x < 32; ++x) EXPECT_GE(out.pixel(x, 0)[0], out.pixel(x - 1, 0)[0]) << x;
}

TEST(Resample, ShorterSideSizeMatchesTorchvision) {
  struct Row {
    int w, h, s, ew, eh;
  };
  // Expected values from torchvision's `int(size * long / short)`.
  for (const Row& r : {Row{200, 133, 256, 384, 256}, Row{120, 170, 256, 256, 362}, Row{500, 375, 256, 341, 256},
                       Row{100, 100, 7, 7, 7}, Row{1, 3, 2, 2, 6}, Row{375, 500, 224, 224, 298},
                       Row{4000, 3, 256, 341333, 256}}) {
    const sv::Size size = sv::shorter_side_size(r.w, r.h, r.s);
    EXPECT_EQ(size.width, r.ew) << r.w << "x" << r.h << " -> " << r.s;
    EXPECT_EQ(size.height, r.eh) << r.w << "x" << r.h << " -> " << r.s;
  }
  EXPECT_THROW(sv::shorter_side_size(0, 5, 10), sparsescope::Error);
  EXPECT_THROW(sv::shorter_side_size(5, 5, 0), sparsescope::Error);
}

// torchvision: crop_left = int(round((w - crop_w) / 2.0)), and Python rounds halves to even.
TEST(Resample, CenterCropOffsetsRoundHalfToEven) {
  struct Row {
    int size, crop, offset;
  };
  for (const Row& r : {Row{10, 7, 2} /* 1.5 */, Row{9, 4, 2} /* 2.5 */, Row{11, 4, 4} /* 3.5 */,
                       Row{13, 4, 4} /* 4.5 */, Row{12, 4, 4}, Row{8, 8, 0}, Row{9, 8, 0} /* 0.5 */}) {
    const sv::Image out = sv::center_crop(coordinate_image(r.size, r.size + 1), r.crop, r.crop);
    ASSERT_EQ(out.width, r.crop);
    ASSERT_EQ(out.height, r.crop);
    EXPECT_EQ(out.pixel(0, 0)[0], r.offset) << r.size << " -> " << r.crop;
    const int top = (r.size + 1 - r.crop) / 2;
    const int top_even = ((r.size + 1 - r.crop) % 2 == 1 && top % 2 == 1) ? top + 1 : top;
    EXPECT_EQ(out.pixel(0, 0)[1], top_even) << r.size + 1 << " -> " << r.crop;
    EXPECT_EQ(out.pixel(r.crop - 1, r.crop - 1)[0], r.offset + r.crop - 1);
  }
}

TEST(Resample, CenterCropPadsLikeTorchvision) {
  const sv::Image image = coordinate_image(3, 2);
  // Both sides too small: padding (1 left, 2 right; 1 top, 2 bottom) makes the crop exact.
  const sv::Image out = sv::center_crop(image, 6, 5);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 6; ++x) {
      const bool inside = x >= 1 && x < 4 && y >= 1 && y < 3;
      const std::uint8_t* p = out.pixel(x, y);
      if (inside) {
        EXPECT_EQ(p[0], x - 1);
        EXPECT_EQ(p[1], y - 1);
      } else {
        EXPECT_EQ(p[0] | p[1] | p[2], 0) << x << "," << y;
      }
    }
  // Only the width padded; the height is then cropped with offset round(0.5) = 0.
  const sv::Image wide = sv::center_crop(image, 6, 1);
  EXPECT_EQ(wide.pixel(0, 0)[2], 0);
  EXPECT_EQ(wide.pixel(1, 0)[0], 0);
  EXPECT_EQ(wide.pixel(1, 0)[1], 0);
  EXPECT_EQ(wide.pixel(3, 0)[0], 2);
}

TEST(Resample, TinyInputsAndOutputs) {
  const sv::Image dot = solid(1, 1, 10, 20, 30);
  for (auto f : {sv::Interpolation::Bilinear, sv::Interpolation::Bicubic}) {
    const sv::Image out = sv::resize(dot, 5, 3, f);
    for (int i = 0; i < 15; ++i) EXPECT_EQ(out.pixels[i * 3 + 2], 30);
    const sv::Image line = sv::resize(coordinate_image(200, 1), 1, 1, f);
    EXPECT_NEAR(line.pixels[0], 99.5, 1.0);  // the mean of 0..199
  }
}

TEST(Resample, RejectsInvalidArguments) {
  const sv::Image image = coordinate_image(4, 4);
  EXPECT_THROW(sv::resize(image, 0, 4, sv::Interpolation::Bicubic), sparsescope::Error);
  EXPECT_THROW(sv::resize(image, 4, -1, sv::Interpolation::Bicubic), sparsescope::Error);
  EXPECT_THROW(sv::resize(image, 1 << 16, 1 << 16, sv::Interpolation::Bicubic), sparsescope::Error);
  EXPECT_THROW(sv::center_crop(image, 0, 2), sparsescope::Error);
  sv::Image broken = image;
  broken.pixels.pop_back();
  EXPECT_THROW(sv::resize(broken, 2, 2, sv::Interpolation::Bilinear), sparsescope::Error);
  EXPECT_THROW(sv::center_crop(broken, 2, 2), sparsescope::Error);
  EXPECT_EQ(sv::parse_interpolation("bicubic"), sv::Interpolation::Bicubic);
  EXPECT_EQ(sv::parse_interpolation("bilinear"), sv::Interpolation::Bilinear);
  EXPECT_STREQ(sv::to_string(sv::Interpolation::Bilinear), "bilinear");
  try {
    sv::parse_interpolation("lanczos");
    ADD_FAILURE() << "no error for 'lanczos'";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'lanczos'"), std::string::npos);
  }
}
