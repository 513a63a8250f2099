// The ImGui panel's pixels, without a window: the selected head's map over the image and the
// layer x head atlas, on the viewer tests' fixture trace, whose attention peaks are known.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "brightest_cell.h"
#include "sparsescope/imgui/panel_pixels.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_maps.h"
#include "viewer_fixture.h"

namespace si = sparsescope::imgui;
namespace st = sparsescope::test;
namespace sv = sparsescope::vision;

namespace {

constexpr int kGrid = static_cast<int>(st::kFixtureGrid);

std::vector<int> rgba(const si::RgbaImage& image, int x, int y) {
  const std::uint8_t* p = &image.pixels[(static_cast<size_t>(y) * image.width + x) * 4];
  return {p[0], p[1], p[2], p[3]};
}

// (row, col) of the brightest patch of the kGrid x kGrid patches of the area at (x0, y0).
std::pair<int64_t, int64_t> brightest_patch(const si::RgbaImage& image, int x0, int y0, int width, int height) {
  return st::brightest_cell(width, height, kGrid, kGrid, [&](int x, int y) {
    const auto p = rgba(image, x0 + x, y0 + y);
    return p[0] + p[1] + p[2];
  });
}

si::Selection gray(int layer, int head, int64_t query, float opacity = 0.6f) {
  si::Selection s;
  s.layer = layer;
  s.head = head;
  s.query = query;
  s.opacity = opacity;
  s.colormap = sv::Colormap::Gray;
  return s;
}

std::string error_of(const sv::Trace& trace, const si::Selection& selection) {
  try {
    si::check_selection(trace, selection);
  } catch (const sparsescope::Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(PanelPixels, OverlayIsBrightestAtTheHeadsPeakPatch) {
  const sv::Trace trace = st::fixture_trace();
  const int side = kGrid * static_cast<int>(st::kFixturePixelsPerPatch);
  for (const auto& s : {gray(0, 0, 0), gray(1, 2, 0), gray(2, 3, 7), gray(2, 1, 19)}) {
    const si::RgbaImage image = si::render_overlay(trace, s);
    ASSERT_EQ(image.width, side);
    ASSERT_EQ(image.height, side);
    ASSERT_EQ(image.pixels.size(), static_cast<size_t>(side * side * 4));
    EXPECT_EQ(brightest_patch(image, 0, 0, side, side), st::peak_patch(s.layer, s.head, s.query))
        << "layer " << s.layer << " head " << s.head << " query " << s.query;
    EXPECT_EQ(rgba(image, side / 2, side / 2)[3], 255);
  }
  EXPECT_NE(si::render_overlay(trace, gray(1, 2, 0)).pixels, si::render_overlay(trace, gray(1, 3, 0)).pixels);
}

TEST(PanelPixels, OpacityWeighsTheMapOverTheImage) {
  const sv::Trace trace = st::fixture_trace();
  // Layer 0, head 0, query 0 peaks at patch (0, 0); patch (4, 4) is the map's minimum.
  const si::RgbaImage none = si::render_overlay(trace, gray(0, 0, 0, 0.0f));
  const si::RgbaImage full = si::render_overlay(trace, gray(0, 0, 0, 1.0f));
  for (const auto& [x, y] : {std::pair{8, 8}, std::pair{40, 24}, std::pair{72, 72}}) {
    const auto* image = trace.image[y][x].data_ptr<std::uint8_t>();
    EXPECT_EQ(rgba(none, x, y), (std::vector<int>{image[0], image[1], image[2], 255})) << x << ", " << y;
  }
  EXPECT_EQ(rgba(full, 72, 72), (std::vector<int>{0, 0, 0, 255}));
  EXPECT_EQ(rgba(full, 4, 4), (std::vector<int>{255, 255, 255, 255})) << "the peak, clear of interpolation";
}

TEST(PanelPixels, WithoutAnImageTheMapAloneAtSixteenPixelsPerPatch) {
  sv::Trace trace = st::fixture_trace();
  trace.image = at::Tensor();
  const si::RgbaImage image = si::render_overlay(trace, gray(0, 0, 0, 0.0f));
  EXPECT_EQ(image.width, kGrid * 16);
  EXPECT_EQ(rgba(image, 72, 72), (std::vector<int>{0, 0, 0, 255})) << "colours even at opacity 0";
  EXPECT_EQ(brightest_patch(image, 0, 0, image.width, image.height), st::peak_patch(0, 0, 0));
}

TEST(PanelPixels, AtlasHoldsEveryHeadOfEveryLayerAtOnePixelPerPatch) {
  const sv::Trace trace = st::fixture_trace();
  const int64_t query = 7;
  const si::RgbaImage atlas = si::render_head_atlas(trace, query, sv::Colormap::Gray);
  ASSERT_EQ(atlas.width, (st::kFixtureHeads + 1) * kGrid) << "the heads, then a column of means";
  ASSERT_EQ(atlas.height, (st::kFixtureLayers + 1) * kGrid) << "the layers, then the rollout row";
  for (int l = 0; l < st::kFixtureLayers; ++l) {
    for (int h = 0; h < st::kFixtureHeads; ++h) {
      const auto [row, col] = st::peak_patch(l, h, query);
      EXPECT_EQ(rgba(atlas, h * kGrid + static_cast<int>(col), l * kGrid + static_cast<int>(row)),
                (std::vector<int>{255, 255, 255, 255}))
          << "layer " << l << " head " << h << ": its own maximum in the top colour";
      EXPECT_EQ(brightest_patch(atlas, h * kGrid, l * kGrid, kGrid, kGrid), std::pair(row, col));
    }
  }
  EXPECT_NE(atlas.pixels, si::render_head_atlas(trace, 0, sv::Colormap::Gray).pixels);

  // Each layer's mean of heads: every head puts half its mass on its own peak patch (distinct
  // patches), so the mean is brightest exactly there and darkest everywhere else.
  for (int l = 0; l < st::kFixtureLayers; ++l) {
    std::vector<int> expected(kGrid * kGrid, 0);
    for (int h = 0; h < st::kFixtureHeads; ++h) {
      const auto [row, col] = st::peak_patch(l, h, query);
      expected[row * kGrid + col] = 255;
    }
    for (int p = 0; p < kGrid * kGrid; ++p) {
      EXPECT_EQ(rgba(atlas, st::kFixtureHeads * kGrid + p % kGrid, l * kGrid + p / kGrid),
                (std::vector<int>{expected[p], expected[p], expected[p], 255}))
          << "layer " << l << " mean, patch " << p;
    }
  }
  // The rollout row: the rollout's maximum in the top colour.
  const at::Tensor rollout = sv::rollout(trace, query)[0];
  const int64_t peak = rollout.argmax().item<int64_t>();
  EXPECT_EQ(rgba(atlas, static_cast<int>(peak % kGrid), st::kFixtureLayers * kGrid + static_cast<int>(peak / kGrid)),
            (std::vector<int>{255, 255, 255, 255}));
}

TEST(PanelPixels, OverlayShowsTheMeanOfHeadsOrTheRollout) {
  const sv::Trace trace = st::fixture_trace();
  const int64_t query = 4;
  si::Selection mean = gray(1, 0, query, 1.0f);
  mean.kind = si::MapKind::MeanOfHeads;
  const si::RgbaImage image = si::render_overlay(trace, mean);
  const int ppp = static_cast<int>(st::kFixturePixelsPerPatch);
  auto centre = [&](const si::RgbaImage& im, int64_t row, int64_t col) {
    return rgba(im, static_cast<int>(col) * ppp + ppp / 2, static_cast<int>(row) * ppp + ppp / 2)[0];
  };
  int darkest_peak = 255;
  for (int h = 0; h < st::kFixtureHeads; ++h) {
    const auto [row, col] = st::peak_patch(1, h, query);
    darkest_peak = std::min(darkest_peak, centre(image, row, col));
  }
  int brightest_other = 0;
  for (int64_t r = 0; r < kGrid; ++r) {
    for (int64_t c = 0; c < kGrid; ++c) {
      bool peak = false;
      for (int h = 0; h < st::kFixtureHeads; ++h) peak |= st::peak_patch(1, h, query) == std::pair(r, c);
      if (!peak) brightest_other = std::max(brightest_other, centre(image, r, c));
    }
  }
  EXPECT_GT(darkest_peak, brightest_other) << "every head's peak outshines every other patch in the mean";
  EXPECT_NE(image.pixels, si::render_overlay(trace, gray(1, 0, query, 1.0f)).pixels) << "not head 0 alone";

  si::Selection rollout = mean;
  rollout.kind = si::MapKind::Rollout;
  const int64_t peak = sv::rollout(trace, query)[0].argmax().item<int64_t>();
  EXPECT_EQ(brightest_patch(si::render_overlay(trace, rollout), 0, 0, kGrid * ppp, kGrid * ppp),
            std::pair(peak / kGrid, peak % kGrid));
  EXPECT_STREQ(si::to_string(si::MapKind::MeanOfHeads), "mean of heads");
}

TEST(PanelPixels, PooledTracesHaveNoRollout) {
  sv::Trace trace = st::fixture_trace();
  auto& site = trace.sites[1];
  site.pool = 2;
  site.probs = at::avg_pool2d(site.probs.unsqueeze(1), 2, 2, 0, /*ceil_mode=*/true).squeeze(1);
  site.mask = at::avg_pool2d(site.mask.unsqueeze(1), 2, 2, 0, /*ceil_mode=*/true).squeeze(1);
  const si::RgbaImage atlas = si::render_head_atlas(trace, 0, sv::Colormap::Gray);
  EXPECT_EQ(rgba(atlas, 0, st::kFixtureLayers * kGrid)[3], 0) << "the rollout tile stays empty";
  EXPECT_EQ(rgba(atlas, st::kFixtureHeads * kGrid, kGrid)[3], 255) << "the pooled layer still has its mean";
  si::Selection rollout = gray(0, 0, 0);
  rollout.kind = si::MapKind::Rollout;
  EXPECT_NE(error_of(trace, rollout).find("rollout needs full maps, but site blocks.1.attn holds maps pooled 2x2"),
            std::string::npos)
      << error_of(trace, rollout);
}

TEST(PanelPixels, AtlasLeavesTheMissingHeadsOfNarrowerLayersTransparent) {
  sv::Trace trace = st::fixture_trace();
  auto& site = trace.sites[0];
  site.probs = site.probs.narrow(0, 0, 2).contiguous();
  site.mask = site.mask.narrow(0, 0, 2).contiguous();
  site.stats = site.stats.narrow(0, 0, 2).contiguous();
  site.rows = site.rows.narrow(0, 0, 2).contiguous();
  const si::RgbaImage atlas = si::render_head_atlas(trace, 0, sv::Colormap::Viridis);
  EXPECT_EQ(atlas.width, (st::kFixtureHeads + 1) * kGrid);
  EXPECT_EQ(rgba(atlas, 1 * kGrid, 0)[3], 255) << "layer 0 head 1";
  EXPECT_EQ(rgba(atlas, 2 * kGrid, 0)[3], 0) << "layer 0 has no head 2";
  EXPECT_EQ(rgba(atlas, 3 * kGrid, kGrid)[3], 255) << "layer 1 head 3";
}

TEST(PanelPixels, OverlayPositionsPickPatchTokens) {
  const sv::TokenLayout layout = st::fixture_trace().info.layout;  // class token, then 5 x 5 patches
  EXPECT_EQ(si::patch_at(layout, 0.0f, 0.0f), 1);
  EXPECT_EQ(si::patch_at(layout, 0.5f, 0.1f), 1 + 2);
  EXPECT_EQ(si::patch_at(layout, 0.1f, 0.5f), 1 + 2 * kGrid);
  EXPECT_EQ(si::patch_at(layout, 0.999f, 0.999f), st::kFixtureTokens - 1);
  EXPECT_EQ(si::patch_at(layout, 1.5f, -1.0f), 1 + kGrid - 1) << "clamped to the grid";
  EXPECT_EQ(si::describe_token(layout, 0), "CLS");
  EXPECT_EQ(si::describe_token(layout, 1 + 2 * kGrid + 3), "patch (2, 3)");
}

TEST(PanelPixels, SelectionsOutOfRangeSayWhatFits) {
  sv::Trace trace = st::fixture_trace();
  EXPECT_EQ(error_of(trace, gray(2, 3, 25)), "no error");
  EXPECT_NE(error_of(trace, gray(3, 0, 0)).find("layer 3 is out of range: the trace has 3 layers"), std::string::npos);
  EXPECT_NE(error_of(trace, gray(0, 4, 0)).find("head 4 is out of range: blocks.0.attn has 4 heads"),
            std::string::npos);
  EXPECT_NE(error_of(trace, gray(0, 0, 26)).find("query 26 is out of range"), std::string::npos);
  EXPECT_NE(error_of(trace, gray(0, 0, 0, 1.5f)).find("opacity 1.5 is outside [0, 1]"), std::string::npos);
  EXPECT_THROW(si::render_overlay(trace, gray(0, -1, 0)), sparsescope::Error);
  trace.info.layout.grid = {2, 5, 5};
  EXPECT_NE(error_of(trace, gray(0, 0, 0)).find("draws single images"), std::string::npos);
  trace.sites.clear();
  EXPECT_NE(error_of(trace, gray(0, 0, 0)).find("holds no attention site"), std::string::npos);
}
