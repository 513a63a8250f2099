// The ImGui panel's pixels, without a window: the selected head's map over the image and the
// layer x head atlas, on the viewer tests' fixture trace, whose attention peaks are known.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "brightest_cell.h"
#include "sparsescope/imgui/panel_pixels.h"
#include "sparsescope/kernels/error.h"
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
  ASSERT_EQ(atlas.width, st::kFixtureHeads * kGrid);
  ASSERT_EQ(atlas.height, st::kFixtureLayers * kGrid);
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
}

TEST(PanelPixels, AtlasLeavesTheMissingHeadsOfNarrowerLayersTransparent) {
  sv::Trace trace = st::fixture_trace();
  auto& site = trace.sites[0];
  site.probs = site.probs.narrow(0, 0, 2).contiguous();
  site.mask = site.mask.narrow(0, 0, 2).contiguous();
  site.stats = site.stats.narrow(0, 0, 2).contiguous();
  site.rows = site.rows.narrow(0, 0, 2).contiguous();
  const si::RgbaImage atlas = si::render_head_atlas(trace, 0, sv::Colormap::Viridis);
  EXPECT_EQ(atlas.width, st::kFixtureHeads * kGrid);
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
