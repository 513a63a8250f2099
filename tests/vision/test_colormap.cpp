// Colormaps against matplotlib's own output: cmap(x, bytes=True) for x = 0, 0.5, 1 (values from
// matplotlib 3.x: its lookup tables, truncated to bytes), and the documented edge cases.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <limits>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/colormap.h"

namespace sv = sparsescope::vision;

namespace {

std::vector<int> rgb(const at::Tensor& image, int64_t x) {
  return {image[0][x][0].item<int>(), image[0][x][1].item<int>(), image[0][x][2].item<int>()};
}

TEST(Colormap, MatchesMatplotlibBytes) {
  const auto values = at::tensor({0.0, 0.5, 1.0}).view({1, 3});
  struct Want {
    sv::Colormap map;
    std::vector<int> lo, mid, hi;
  };
  // viridis(0) is #440154 and viridis(1) #fde725 rounded; matplotlib's bytes truncate 0.144 * 255.
  for (const Want& w : {Want{sv::Colormap::Viridis, {68, 1, 84}, {32, 144, 140}, {253, 231, 36}},
                        Want{sv::Colormap::Magma, {0, 0, 3}, {182, 54, 121}, {251, 252, 191}},
                        Want{sv::Colormap::Inferno, {0, 0, 3}, {187, 55, 84}, {252, 254, 164}},
                        Want{sv::Colormap::Turbo, {48, 18, 59}, {164, 252, 59}, {122, 4, 2}},
                        Want{sv::Colormap::Gray, {0, 0, 0}, {128, 128, 128}, {255, 255, 255}}}) {
    const auto image = sv::apply_colormap(values, w.map, 0.0, 1.0);
    EXPECT_EQ(image.sizes(), at::IntArrayRef({1, 3, 3}));
    EXPECT_EQ(image.scalar_type(), at::kByte);
    EXPECT_EQ(rgb(image, 0), w.lo) << sv::to_string(w.map);
    EXPECT_EQ(rgb(image, 1), w.mid) << sv::to_string(w.map);
    EXPECT_EQ(rgb(image, 2), w.hi) << sv::to_string(w.map);
  }
}

TEST(Colormap, RangeClampsAndDegenerateCases) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto values = at::tensor({-1.0, 2.0, 7.0, nan}).view({1, 4});
  const auto image = sv::apply_colormap(values, sv::Colormap::Gray, 2.0, 6.0);
  EXPECT_EQ(rgb(image, 0)[0], 0);    // below lo
  EXPECT_EQ(rgb(image, 1)[0], 0);    // lo
  EXPECT_EQ(rgb(image, 2)[0], 255);  // above hi
  EXPECT_EQ(rgb(image, 3)[0], 0);    // NaN draws as lo
  const auto flat = sv::apply_colormap(at::full({2, 2}, 3.0), sv::Colormap::Viridis, 3.0, 3.0);
  EXPECT_EQ(rgb(flat, 1), (std::vector<int>{68, 1, 84}));
  EXPECT_THROW(sv::apply_colormap(at::zeros({2, 2, 2}), sv::Colormap::Gray, 0, 1), sparsescope::Error);
  EXPECT_THROW(sv::apply_colormap(at::zeros({2, 2}, at::kLong), sv::Colormap::Gray, 0, 1), sparsescope::Error);
}

TEST(Colormap, NamesRoundTripAndUnknownOnesListTheChoices) {
  for (const auto map :
       {sv::Colormap::Viridis, sv::Colormap::Magma, sv::Colormap::Inferno, sv::Colormap::Turbo, sv::Colormap::Gray})
    EXPECT_EQ(sv::parse_colormap(sv::to_string(map)), map);
  try {
    sv::parse_colormap("jet");
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'jet'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("viridis, magma, inferno, turbo, gray"), std::string::npos) << e.what();
  }
}

TEST(Blend, WeighsAndRounds) {
  const auto image = at::tensor({0, 100, 255}, at::kByte).view({1, 1, 3});
  const auto overlay = at::tensor({255, 0, 255}, at::kByte).view({1, 1, 3});
  const auto mixed = sv::blend(image, overlay, 0.25);
  // 0.75 * 0 + 0.25 * 255 = 63.75 -> 64; 0.75 * 100 = 75; 255.
  EXPECT_TRUE(at::equal(mixed, at::tensor({64, 75, 255}, at::kByte).view({1, 1, 3})));
  EXPECT_TRUE(at::equal(sv::blend(image, overlay, 0), image));
  EXPECT_TRUE(at::equal(sv::blend(image, overlay, 1), overlay));
  EXPECT_THROW(sv::blend(image, at::zeros({1, 2, 3}, at::kByte), 0.5), sparsescope::Error);
  EXPECT_THROW(sv::blend(image, overlay, 1.5), sparsescope::Error);
}

}  // namespace
