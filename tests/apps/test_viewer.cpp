#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "process.h"
#include "sparsescope/vision/image.h"

namespace fs = std::filesystem;

namespace {

const std::vector<std::pair<std::string, std::string>> kOffscreen{{"QT_QPA_PLATFORM", "offscreen"}};

TEST(Viewer, ScreenshotOfAnOpenedImage) {
  const fs::path shot = fs::temp_directory_path() / ("sparsescope-viewer-" + std::to_string(::getpid()) + ".png");
  auto r = sparsescope::test::run_process(
      SPARSESCOPE_VIEWER, {(fs::path(SPARSESCOPE_SAMPLES_DIR) / "chelsea.png").string(), "--screenshot", shot.string()},
      kOffscreen);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto image = sparsescope::vision::read_image(shot.string());
  EXPECT_GE(image.width, 320);
  EXPECT_GE(image.height, 240);
  // The photo is drawn: the screenshot is not one flat colour.
  const auto [lo, hi] = std::minmax_element(image.pixels.begin(), image.pixels.end());
  EXPECT_GT(*hi - *lo, 100);
  fs::remove(shot);
}

TEST(Viewer, BadFileExitsNonZero) {
  const fs::path bad = fs::temp_directory_path() / ("sparsescope-viewer-bad-" + std::to_string(::getpid()) + ".png");
  std::ofstream(bad) << "not an image";
  const fs::path shot = bad.string() + ".shot.png";
  auto r = sparsescope::test::run_process(SPARSESCOPE_VIEWER, {bad.string(), "--screenshot", shot.string()}, kOffscreen);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(bad.filename().string()), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(shot));
  fs::remove(bad);
}

}  // namespace
