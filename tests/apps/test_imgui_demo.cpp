// sparsescope-imgui-demo as a user runs it. The window tests draw the viewer tests' fixture trace in
// a real GLFW window (CTest runs them under xvfb-run) and check the screenshot's overlay against the
// fixture's known attention peaks; they skip, saying why, where no window can be opened.
#include <ATen/ATen.h>  // before Qt (process.h), whose `slots` macro breaks LibTorch's headers
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "brightest_cell.h"
#include "process.h"
#include "sparsescope/vision/attention_maps.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/trace.h"
#include "temp_dir.h"
#include "viewer_fixture.h"

namespace fs = std::filesystem;
namespace st = sparsescope::test;
namespace sv = sparsescope::vision;

namespace {

constexpr int kNoWindow = 3;  // the demo's exit status when no window can be opened

// A folder of its own per test, with the fixture trace saved in it.
class ImguiDemo : public st::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    trace_ = (dir_ / "fixture.trace.safetensors").string();
    sv::save_trace(st::fixture_trace(), trace_);
  }

  st::ProcessResult run(std::vector<std::string> args) const {
    args.insert(args.begin(), trace_);
    return st::run_process(SPARSESCOPE_IMGUI_DEMO, args);
  }

  std::string trace_;
};

class ImguiDemoWindow : public ImguiDemo {
 protected:
  void SetUp() override {
    ImguiDemo::SetUp();
    if (HasFatalFailure()) return;
    static const st::ProcessResult probe = run({"--screenshot", (dir_ / "probe.png").string()});
    if (probe.status == kNoWindow) GTEST_SKIP() << "no window with an OpenGL 3 context here: " << probe.err;
  }

  struct Shot {
    sv::Image image;
    int x = 0, y = 0, width = 0, height = 0;  // the overlay, as the demo reports it
  };

  // Screenshot of the fixture at (layer, head, query) in gray at full opacity: the map alone.
  Shot shoot(const std::string& name, std::vector<std::string> args) const {
    const std::string out = (dir_ / name).string();
    args.insert(args.end(), {"--colormap", "gray", "--opacity", "1", "--screenshot", out});
    const st::ProcessResult r = run(args);
    Shot shot;
    EXPECT_EQ(r.status, 0) << r.err;
    const auto at = r.out.find("overlay at ");
    EXPECT_NE(at, std::string::npos) << r.out;
    if (r.status != 0 || at == std::string::npos) return shot;
    EXPECT_EQ(std::sscanf(r.out.c_str() + at, "overlay at %d %d, %d x %d", &shot.x, &shot.y, &shot.width,
                          &shot.height), 4)
        << r.out;
    shot.image = sv::read_image(out);
    return shot;
  }

  // (row, col) of the brightest patch in the screenshot's overlay.
  static std::pair<int64_t, int64_t> peak_in(const Shot& shot) {
    if (shot.width <= 0 || shot.x + shot.width > shot.image.width || shot.y + shot.height > shot.image.height)
      return {-1, -1};
    const int grid = static_cast<int>(st::kFixtureGrid);
    return st::brightest_cell(shot.width, shot.height, grid, grid, [&](int x, int y) {
      const auto* p = shot.image.pixel(shot.x + x, shot.y + y);
      return p[0] + p[1] + p[2];
    });
  }

  static std::vector<std::uint8_t> overlay_pixels(const Shot& shot) {
    std::vector<std::uint8_t> pixels;
    for (int y = shot.y; y < shot.y + shot.height && y < shot.image.height; ++y) {
      const auto* row = shot.image.pixel(shot.x, y);
      pixels.insert(pixels.end(), row, row + shot.width * sv::Image::channels);
    }
    return pixels;
  }
};

}  // namespace

TEST_F(ImguiDemoWindow, OverlayPeaksWhereTheSelectedHeadLooks) {
  const Shot head2 = shoot("head2.png", {"--layer", "1", "--head", "2", "--query", "0"});
  const Shot head3 = shoot("head3.png", {"--layer", "1", "--head", "3", "--query", "0"});
  const Shot query3 = shoot("query3.png", {"--layer", "1", "--head", "2", "--query", "3"});
  EXPECT_EQ(head2.image.width, 960);
  EXPECT_EQ(head2.image.height, 540);
  EXPECT_GE(head2.width, 300) << "the overlay is drawn large";
  EXPECT_EQ(peak_in(head2), st::peak_patch(1, 2, 0));
  EXPECT_EQ(peak_in(head3), st::peak_patch(1, 3, 0));
  EXPECT_EQ(peak_in(query3), st::peak_patch(1, 2, 3));
  EXPECT_NE(overlay_pixels(head2), overlay_pixels(head3)) << "another head, another picture";
}

TEST_F(ImguiDemoWindow, DefaultsToTheLastLayersFirstHeadForTheClassToken) {
  const Shot shot = shoot("default.png", {});
  EXPECT_EQ(peak_in(shot), st::peak_patch(st::kFixtureLayers - 1, 0, 0));
}

TEST_F(ImguiDemoWindow, MapFlagShowsTheMeanOfHeadsOrTheRollout) {
  const Shot head = shoot("head.png", {"--layer", "1", "--head", "0"});
  const Shot mean = shoot("mean.png", {"--layer", "1", "--map", "mean"});
  const Shot rollout = shoot("rollout.png", {"--map", "rollout"});
  EXPECT_NE(overlay_pixels(mean), overlay_pixels(head)) << "the mean of four heads is not head 0";
  EXPECT_NE(overlay_pixels(rollout), overlay_pixels(mean));
  // The fixture's rollout has near-equal maxima (0.0711 and 0.0714), which upsampling may reorder:
  // the brightest patch must be one of them.
  const at::Tensor map = sv::rollout(sv::load_trace(trace_), 0)[0];  // [gh, gw]
  const auto [row, col] = peak_in(rollout);
  ASSERT_GE(row, 0);
  EXPECT_GE(map[row][col].item<float>(), 0.95f * map.max().item<float>()) << map;
}

TEST_F(ImguiDemo, UnreadableTraceExitsOneNamingTheFile) {
  const fs::path bad = dir_ / "bad.trace.safetensors";
  std::ofstream(bad) << "not a trace";
  for (const fs::path& file : {bad, dir_ / "missing.trace.safetensors"}) {
    const fs::path shot = dir_ / "shot.png";
    const st::ProcessResult r = st::run_process(SPARSESCOPE_IMGUI_DEMO, {file.string(), "--screenshot", shot.string()});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find(file.filename().string()), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(shot));
  }
}

TEST_F(ImguiDemo, SelectionOutOfRangeIsAUsageError) {
  st::ProcessResult r = run({"--head", "9", "--screenshot", (dir_ / "shot.png").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("head 9 is out of range"), std::string::npos) << r.err;
  r = run({"--colormap", "rainbow"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("unknown colormap 'rainbow'"), std::string::npos) << r.err;
  r = run({"--layer", "one"});
  EXPECT_EQ(r.status, 2) << r.err;
  r = run({"--map", "max"});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("--map"), std::string::npos) << r.err;
}
