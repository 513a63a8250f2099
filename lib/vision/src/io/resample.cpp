// Note [PIL-compatible resampling]: a timm model's logits are only reproducible from the exact
// uint8 pixels PIL produces, so this mirrors Pillow's ImagingResample (src/libImaging/Resample.c)
// step by step rather than any "equivalent" formulation:
//  * Coefficients per output pixel: center = (xx + 0.5) * scale; the filter is stretched by
//    max(scale, 1) (antialiasing when downscaling); the window is
//    [(int)(center - support + 0.5), (int)(center + support + 0.5)) clipped to the image; weights
//    are filter((x - center + 0.5) / filterscale), divided by their sum, then converted to
//    fixed point with 22 fractional bits, rounding half away from zero.
//  * Accumulators start at 2^21 (rounding), the result is (acc >> 22) clipped to [0, 255].
//  * Two passes with the intermediate image rounded to uint8, so the pass order changes results.
//    Pillow 13 (src/libImaging/Resample.c, ImagingResampleInner) runs the vertical pass first iff
//    the height shrinks by more than twice as many pixels as the width:
//    (in_h - h) > 0 && (in_h - h) > 2 * (in_w - w); otherwise horizontal first, over only the
//    source rows the vertical pass will read. Pillow <= 12 always ran horizontal first, so results
//    differ from those versions in exactly the vertical-first cases (for an aspect-preserving
//    resize, only images more than twice as tall as wide). A pass whose size is unchanged is
//    skipped entirely.
// Accumulation is in 64 bits where Pillow uses int; Pillow's headroom argument (2 spare bits)
// means the results agree whenever Pillow's own arithmetic does not overflow.
#include "sparsescope/vision/resample.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

// Keys' cubic with a = -0.5, written in Pillow's operation order so that the doubles agree.
double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

struct Filter {
  double (*fn)(double);
  double support;
};

Filter filter_for(Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::Bilinear: return {bilinear_filter, 1.0};
    case Interpolation::Bicubic: return {bicubic_filter, 2.0};
  }
  SPARSESCOPE_FAIL("resize: unknown interpolation ", static_cast<int>(interpolation));
}

// One axis' fixed-point weights: output pixel i reads `count[i]` inputs from `first[i]` with
// weights k[i * ksize ...].
struct Coefficients {
  int ksize = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<std::int32_t> k;
};

Coefficients precompute(int in_size, int out_size, const Filter& filter) {
  // Pillow takes the box edges as floats; for whole-image resizes they are 0 and in_size.
  const float in0 = 0.0f;
  const float in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter.support * filterscale;
  const double ceil_support = std::ceil(support);
  SPARSESCOPE_CHECK(ceil_support * 2 + 1 <= static_cast<double>(INT_MAX), "resize: filter support ", support,
                    " is too large");
  Coefficients c;
  // Pillow's row stride is ceil(support) * 2 + 1; no window holds more than in_size taps, so the
  // smaller stride changes no weight and bounds memory for extreme downscales.
  c.ksize = static_cast<int>(std::min<double>(ceil_support * 2 + 1, in_size));
  const std::size_t ksize = static_cast<std::size_t>(c.ksize);
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<std::size_t>(out_size) * ksize, 0);
  std::vector<double> weights(ksize);
  const double ss = 1.0 / filterscale;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = filter.fn((x + xmin - center + 0.5) * ss);
      weights[x] = w;
      ww += w;
    }
    std::int32_t* k = &c.k[static_cast<std::size_t>(xx) * ksize];
    for (int x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? weights[x] / ww : weights[x];
      k[x] = w < 0 ? static_cast<std::int32_t>(-0.5 + w * (1 << kPrecisionBits))
                   : static_cast<std::int32_t>(0.5 + w * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline std::uint8_t clip8(std::int64_t acc) {
  const std::int64_t v = acc >> kPrecisionBits;
  return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

constexpr std::int64_t kRoundingBias = std::int64_t{1} << (kPrecisionBits - 1);

// Resamples rows [row_offset, row_offset + out.height) of `in` horizontally into `out`.
void horizontal_pass(const Image& in, int row_offset, const Coefficients& c, Image& out) {
  const std::size_t ksize = static_cast<std::size_t>(c.ksize);
  for (int yy = 0; yy < out.height; ++yy) {
    const std::uint8_t* row = in.pixel(0, yy + row_offset);
    std::uint8_t* dst = out.pixel(0, yy);
    for (int xx = 0; xx < out.width; ++xx) {
      const std::int32_t* k = &c.k[static_cast<std::size_t>(xx) * ksize];
      const std::uint8_t* src = row + static_cast<std::size_t>(c.first[xx]) * 3;
      std::int64_t s0 = kRoundingBias, s1 = kRoundingBias, s2 = kRoundingBias;
      for (int x = 0; x < c.count[xx]; ++x) {
        s0 += src[x * 3 + 0] * static_cast<std::int64_t>(k[x]);
        s1 += src[x * 3 + 1] * static_cast<std::int64_t>(k[x]);
        s2 += src[x * 3 + 2] * static_cast<std::int64_t>(k[x]);
      }
      dst[xx * 3 + 0] = clip8(s0);
      dst[xx * 3 + 1] = clip8(s1);
      dst[xx * 3 + 2] = clip8(s2);
    }
  }
}

// Resamples `in` vertically into `out`; c.first is relative to `in`'s first row.
void vertical_pass(const Image& in, const Coefficients& c, Image& out) {
  const std::size_t ksize = static_cast<std::size_t>(c.ksize);
  const std::size_t stride = in.row_bytes();
  const std::size_t row_bytes = out.row_bytes();
  std::vector<std::int64_t> acc(row_bytes);
  for (int yy = 0; yy < out.height; ++yy) {
    const std::int32_t* k = &c.k[static_cast<std::size_t>(yy) * ksize];
    std::fill(acc.begin(), acc.end(), kRoundingBias);
    // Row-by-row accumulation touches memory sequentially; the per-pixel sums, and so the
    // results, are the same as Pillow's column-wise loop (integer addition is associative).
    for (int y = 0; y < c.count[yy]; ++y) {
      const std::uint8_t* src = in.pixels.data() + static_cast<std::size_t>(c.first[yy] + y) * stride;
      const std::int64_t w = k[y];
      for (std::size_t i = 0; i < row_bytes; ++i) acc[i] += src[i] * w;
    }
    std::uint8_t* dst = out.pixel(0, yy);
    for (std::size_t i = 0; i < row_bytes; ++i) dst[i] = clip8(acc[i]);
  }
}

void check_image(const Image& image, const char* what) {
  SPARSESCOPE_CHECK(image.width > 0 && image.height > 0, what, ": invalid input size ", image.width, " x ",
                    image.height);
  SPARSESCOPE_CHECK(image.pixels.size() == image.row_bytes() * static_cast<std::size_t>(image.height), what,
                    ": ", image.width, " x ", image.height, " RGB image needs ",
                    image.row_bytes() * static_cast<std::size_t>(image.height), " bytes, has ",
                    image.pixels.size());
}

void check_output_size(int width, int height, const char* what) {
  SPARSESCOPE_CHECK(width > 0 && height > 0, what, ": output size must be positive, got ", width, " x ",
                    height);
  SPARSESCOPE_CHECK(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) <= kMaxImagePixels,
                    what, ": output size ", width, " x ", height, " exceeds the limit of ", kMaxImagePixels,
                    " pixels");
}

Image blank(int width, int height, const Image& like) {
  Image out;
  out.width = width;
  out.height = height;
  out.source_channels = like.source_channels;
  out.source_bits = like.source_bits;
  out.pixels.assign(out.row_bytes() * static_cast<std::size_t>(height), 0);
  return out;
}

}  // namespace

const char* to_string(Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::Bilinear: return "bilinear";
    case Interpolation::Bicubic: return "bicubic";
  }
  return "unknown";
}

Interpolation parse_interpolation(const std::string& name) {
  if (name == "bilinear") return Interpolation::Bilinear;
  if (name == "bicubic") return Interpolation::Bicubic;
  SPARSESCOPE_FAIL("unknown interpolation '", name, "' (expected 'bilinear' or 'bicubic')");
}

Image resize(const Image& image, int width, int height, Interpolation interpolation) {
  check_image(image, "resize");
  check_output_size(width, height, "resize");
  const Filter filter = filter_for(interpolation);
  const bool need_horizontal = width != image.width;
  const bool need_vertical = height != image.height;
  if (!need_horizontal && !need_vertical) return image;

  // Pillow >= 13 runs the vertical pass first when the height shrinks by more than twice as many
  // pixels as the width does; see Note [PIL-compatible resampling].
  const long long dh = static_cast<long long>(image.height) - height;
  const long long dw = static_cast<long long>(image.width) - width;
  const bool horizontal_first = !(dh > 0 && dh > dw * 2);

  if (!horizontal_first) {
    Image temp = blank(image.width, height, image);
    vertical_pass(image, precompute(image.height, height, filter), temp);
    if (!need_horizontal) return temp;
    Image out = blank(width, height, image);
    horizontal_pass(temp, 0, precompute(image.width, width, filter), out);
    return out;
  }
  if (!need_horizontal) {
    Image out = blank(width, height, image);
    vertical_pass(image, precompute(image.height, height, filter), out);
    return out;
  }
  // Only the source rows the vertical pass will read go through the horizontal pass.
  Coefficients vert = precompute(image.height, height, filter);
  const int first_row = vert.first.front();
  const int last_row = vert.first.back() + vert.count.back();
  Image temp = blank(width, last_row - first_row, image);
  horizontal_pass(image, first_row, precompute(image.width, width, filter), temp);
  if (!need_vertical) return temp;
  for (int& f : vert.first) f -= first_row;
  Image out = blank(width, height, image);
  vertical_pass(temp, vert, out);
  return out;
}

Size shorter_side_size(int width, int height, int shorter) {
  SPARSESCOPE_CHECK(width > 0 && height > 0, "resize: invalid input size ", width, " x ", height);
  SPARSESCOPE_CHECK(shorter > 0, "resize: shorter side must be positive, got ", shorter);
  const bool portrait = width <= height;
  const long long short_side = portrait ? width : height;
  const long long long_side = portrait ? height : width;
  // Python's `int(shorter * long / short)`: exact integer product, correctly rounded true
  // division, truncation. All three are exact in double for sizes below 2^26.
  const double new_long = std::trunc(static_cast<double>(shorter * long_side) / static_cast<double>(short_side));
  SPARSESCOPE_CHECK(new_long <= static_cast<double>(INT_MAX), "resize: ", width, " x ", height,
                    " image resized to shorter side ", shorter, " is too large");
  const int longer = static_cast<int>(new_long);
  return portrait ? Size{shorter, longer} : Size{longer, shorter};
}

Image resize_shorter_side(const Image& image, int shorter, Interpolation filter) {
  check_image(image, "resize");
  const Size size = shorter_side_size(image.width, image.height, shorter);
  return resize(image, size.width, size.height, filter);
}

Image center_crop(const Image& image, int width, int height) {
  check_image(image, "center_crop");
  check_output_size(width, height, "center_crop");
  // torchvision pads a too-small image symmetrically (left/top get the floor half) ...
  const int pad_left = width > image.width ? (width - image.width) / 2 : 0;
  const int pad_top = height > image.height ? (height - image.height) / 2 : 0;
  const int padded_width = std::max(width, image.width);
  const int padded_height = std::max(height, image.height);
  // ... then offsets by int(round(d / 2.0)); Python rounds halves to even.
  auto offset = [](int d) {
    const int half = d / 2;
    return (d % 2 == 1 && half % 2 == 1) ? half + 1 : half;
  };
  const int left = offset(padded_width - width) - pad_left;  // in source coordinates
  const int top = offset(padded_height - height) - pad_top;
  Image out = blank(width, height, image);
  const int x0 = std::max(0, -left);
  const int x1 = std::min(width, image.width - left);
  for (int y = 0; y < height; ++y) {
    const int sy = y + top;
    if (sy < 0 || sy >= image.height || x1 <= x0) continue;
    std::memcpy(out.pixel(x0, y), image.pixel(x0 + left, sy), static_cast<std::size_t>(x1 - x0) * 3);
  }
  return out;
}

}  // namespace sparsescope::vision
