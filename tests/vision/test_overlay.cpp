// Overlays: tiles per head in a grid, each head scaled from its minimum to its maximum and drawn in
// the colormap over the image.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/overlay.h"

namespace sv = sparsescope::vision;

namespace {

// A class token and a 2 x 2 grid; head h of query 0 looks only at patch h.
sv::Trace one_hot_trace(int64_t heads) {
  sv::Trace t;
  t.info.layout.prefix = 1;
  t.info.layout.grid = {1, 2, 2};
  sv::SiteTrace s;
  s.name = "blocks.0.attn";
  s.queries = s.keys = 5;
  s.probs = at::full({heads, 5, 5}, 0.2f);
  for (int64_t h = 0; h < heads; ++h) {
    s.probs[h][0].zero_();
    s.probs[h][0][1 + h] = 1.0f;
  }
  s.mask = at::ones({1, 5, 5});
  s.stats = at::zeros({heads, sv::kStatColumns});
  s.row_queries = at::empty({0}, at::kLong);
  s.rows = at::empty({heads, 0, 5});
  t.sites.push_back(s);
  return t;
}

std::vector<int> pixel(const sv::Image& image, int x, int y) {
  const auto* p = image.pixel(x, y);
  return {p[0], p[1], p[2]};
}

TEST(Overlay, HeadsTileInAGridWithTheirMaximaInTheTopColour) {
  const auto trace = one_hot_trace(3);
  sv::OverlayStyle style;  // viridis
  const auto grid = sv::head_grid_overlay(trace, trace.sites[0], 0, style);
  // No image in the trace: 16 px per patch, so 32 x 32 tiles, 2 columns, 2 rows, 4 px gaps.
  EXPECT_EQ(grid.width, 68);
  EXPECT_EQ(grid.height, 68);
  const std::vector<int> top{253, 231, 36}, bottom{68, 1, 84}, white{255, 255, 255};
  EXPECT_EQ(pixel(grid, 0, 0), top) << "head 0 looks at patch (0, 0)";
  EXPECT_EQ(pixel(grid, 31, 31), bottom);
  EXPECT_EQ(pixel(grid, 36 + 31, 0), top) << "head 1 looks at patch (0, 1)";
  EXPECT_EQ(pixel(grid, 0, 36 + 31), top) << "head 2 looks at patch (1, 0)";
  EXPECT_EQ(pixel(grid, 33, 10), white) << "gap";
  EXPECT_EQ(pixel(grid, 50, 50), white) << "no fourth head";
}

TEST(Overlay, BlendsOverTheImage) {
  auto trace = one_hot_trace(1);
  trace.image = at::full({20, 20, 3}, 100, at::kByte);
  sv::OverlayStyle style;
  style.colormap = sv::Colormap::Gray;
  style.alpha = 0.5;
  const auto image = sv::head_grid_overlay(trace, trace.sites[0], 0, style);
  EXPECT_EQ(image.width, 20);
  EXPECT_EQ(pixel(image, 0, 0), (std::vector<int>{178, 178, 178}));  // (100 + 255) / 2 rounded
  EXPECT_EQ(pixel(image, 19, 19), (std::vector<int>{50, 50, 50}));
  const auto rollout = sv::rollout_overlay(trace, 0, style);
  EXPECT_EQ(rollout.width, 20);
  EXPECT_EQ(rollout.height, 20);
}

TEST(Overlay, NeedsASingleFrameGrid) {
  auto trace = one_hot_trace(1);
  trace.info.layout.grid = {2, 1, 2};
  EXPECT_THROW(sv::head_grid_overlay(trace, trace.sites[0], 0), sparsescope::Error);
}

}  // namespace
