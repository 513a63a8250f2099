#include <ATen/ATen.h>  // before Qt (process.h), whose `slots` macro breaks LibTorch's headers
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "fixtures.h"
#include "process.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/trace.h"
#include "viewer_fixture.h"
#include "temp_dir.h"

namespace fs = std::filesystem;

using sparsescope::test::kVitTinyWeights;

namespace {

const std::vector<std::pair<std::string, std::string>> kOffscreen{{"QT_QPA_PLATFORM", "offscreen"}};
const std::string kVitTiny = "vit_tiny_patch16_224";

// A folder of its own per test, with the fixture trace saved in it.
class ViewerProcess : public sparsescope::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    trace_ = (dir_ / "fixture.trace.safetensors").string();
    sparsescope::vision::save_trace(sparsescope::test::fixture_trace(), trace_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string trace_;
};

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

TEST_F(ViewerProcess, ScreenshotOfATraceAtTheChosenHead) {
  auto shot = [&](const std::string& head, const std::string& out) {
    return sparsescope::test::run_process(
        SPARSESCOPE_VIEWER,
        {trace_, "--layer", "1", "--head", head, "--query", "0", "--colormap", "gray", "--screenshot", out}, kOffscreen);
  };
  auto r = shot("2", path("head2.png"));
  ASSERT_EQ(r.status, 0) << r.err;
  r = shot("3", path("head3.png"));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto head2 = sparsescope::vision::read_image(path("head2.png"));
  const auto head3 = sparsescope::vision::read_image(path("head3.png"));
  EXPECT_EQ(head2.width, head3.width);
  EXPECT_EQ(head2.height, head3.height);
  EXPECT_GE(head2.width, 1024);
  EXPECT_NE(head2.pixels, head3.pixels);  // another head, another picture
}

TEST_F(ViewerProcess, SelectionOutOfRangeIsAUsageError) {
  const auto r = sparsescope::test::run_process(
      SPARSESCOPE_VIEWER, {trace_, "--head", "4", "--screenshot", path("shot.png")}, kOffscreen);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("head 4"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("shot.png")));
}

TEST_F(ViewerProcess, RunsAModelOnAnImageForTheScreenshot) {
  const auto r = sparsescope::test::run_process(
      SPARSESCOPE_VIEWER,
      {(fs::path(SPARSESCOPE_SAMPLES_DIR) / "chelsea.png").string(), "--model", kVitTiny, "--weights", kVitTinyWeights,
       "--layer", "11", "--head", "2", "--screenshot", path("shot.png")},
      kOffscreen);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_GE(sparsescope::vision::read_image(path("shot.png")).width, 1024);
}

TEST_F(ViewerProcess, AnUnknownModelIsAUsageErrorNamingIt) {
  const auto r = sparsescope::test::run_process(
      SPARSESCOPE_VIEWER,
      {(fs::path(SPARSESCOPE_SAMPLES_DIR) / "chelsea.png").string(), "--model", "vit_nonexistent", "--weights",
       kVitTinyWeights, "--screenshot", path("shot.png")},
      kOffscreen);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("vit_nonexistent"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("shot.png")));
}

TEST_F(ViewerProcess, AFailedRunExitsOneNamingTheWeights) {
  const auto r = sparsescope::test::run_process(
      SPARSESCOPE_VIEWER,
      {(fs::path(SPARSESCOPE_SAMPLES_DIR) / "chelsea.png").string(), "--weights", path("missing.safetensors"),
       "--screenshot", path("shot.png")},
      kOffscreen);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("missing.safetensors"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("shot.png")));
}

TEST_F(ViewerProcess, TracesItCannotShowExitOneSayingWhy) {
  auto nan = sparsescope::test::fixture_trace();
  nan.sites[0].probs[0][0][0] = NAN;
  sparsescope::vision::save_trace(nan, path("nan.trace.safetensors"));
  auto r = sparsescope::test::run_process(
      SPARSESCOPE_VIEWER, {path("nan.trace.safetensors"), "--screenshot", path("nan.png")}, kOffscreen);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("blocks.0.attn/probs' holds 1 NaN or infinite values"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("nan.png")));

  auto layout = sparsescope::test::fixture_trace();
  layout.info.layout.grid = {1, 1, 3};  // 1 + 3 tokens, the maps have more
  layout.info.layout.segments = {{"prefix", 0, 1}, {"image", 1, 4}};
  sparsescope::vision::save_trace(layout, path("layout.trace.safetensors"));
  r = sparsescope::test::run_process(
      SPARSESCOPE_VIEWER, {path("layout.trace.safetensors"), "--screenshot", path("layout.png")}, kOffscreen);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("the token layout has 4 tokens"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("layout.png")));
}

TEST_F(ViewerProcess, DevicesAndDtypesAreCheckedAsTheCliChecksThem) {
  std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--device", "tpu"}, "--device: unknown device 'tpu'"}, {{"--dtype", "nonsense"}, "--dtype: unknown dtype"}};
  if (!at::hasCUDA()) cases.push_back({{"--device", "cuda"}, "no CUDA device is available"});
  for (const auto& [args, message] : cases) {
    std::vector<std::string> argv{trace_};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--screenshot", path("shot.png")});
    const auto r = sparsescope::test::run_process(SPARSESCOPE_VIEWER, argv, kOffscreen);
    EXPECT_EQ(r.status, 2) << args[1];
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(path("shot.png")));
}

TEST_F(ViewerProcess, FifosAndBrokenVideosAreRefusedQuietly) {
  ASSERT_EQ(::mkfifo(path("p.png").c_str(), 0600), 0);
  auto r = sparsescope::test::run_process(SPARSESCOPE_VIEWER, {path("p.png"), "--screenshot", path("shot.png")},
                                          kOffscreen);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("is a FIFO (named pipe), not a regular file"), std::string::npos) << r.err;
  std::ofstream(path("garbage.mp4")) << std::string(4096, 'x');
  r = sparsescope::test::run_process(SPARSESCOPE_VIEWER, {path("garbage.mp4"), "--screenshot", path("shot.png")},
                                     kOffscreen);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("garbage.mp4"), std::string::npos) << r.err;
  for (const std::string noise : {"WARN", "moov atom", "GStreamer"}) {
    EXPECT_EQ(r.err.find(noise), std::string::npos) << "backend noise before our message: " << r.err;
  }
  EXPECT_FALSE(fs::exists(path("shot.png")));
}

}  // namespace

TEST_F(ViewerProcess, MethodsAreCheckedAndFollowTheWeights) {
  const std::string image = (fs::path(SPARSESCOPE_SAMPLES_DIR) / "chelsea.png").string();
  auto r = sparsescope::test::run_process(
      SPARSESCOPE_VIEWER, {image, "--weights", kVitTinyWeights, "--method", "bigbird", "--screenshot", path("shot.png")},
      kOffscreen);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--method: 'bigbird'"), std::string::npos) << r.err;
  r = sparsescope::test::run_process(SPARSESCOPE_VIEWER,
                                     {image, "--model", kVitTiny, "--weights", kVitTinyWeights, "--method",
                                      "sparsifiner", "--screenshot", path("shot.png")},
                                     kOffscreen);
  EXPECT_EQ(r.status, 1);  // the run fails: these weights carry no predictors
  EXPECT_NE(r.err.find("sparsifiner"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("shot.png")));
}
