// `sparsescope sr` as users run it: images, folders and video frames upscaled into PNGs with infer's
// batch semantics (bad items reported and skipped, finished outputs skipped on a rerun, a summary
// and exit status), the same pixels tiled as untiled when a tile covers the image, usage errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

// LibTorch's headers before Qt's (process.h), whose `slots` macro breaks them.
#include "sparsescope/vision/dlgsanet.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/trace.h"
#include "process.h"
#include "temp_dir.h"

#ifdef SPARSESCOPE_TEST_VIDEO
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>
#endif

namespace fs = std::filesystem;
namespace sv = sparsescope::vision;
using sparsescope::test::run_process;

namespace {

class CliSr : public sparsescope::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    weights_ = dir_ / "model.safetensors";
    // DLGSANet Tiny x2 at its seeded initialisation, saved with its card as `train --task sr` does.
    at::manual_seed(0);
    sv::DLGSANet model(sv::dlgsanet_config("dlgsanet_tiny_x2"));
    sv::NamedTensors weights;
    for (const auto& item : model->named_parameters()) weights.emplace_back(item.key(), item.value().detach());
    sv::save_safetensors(weights_.string(), weights, {{sv::kDlgsaCardKey, sv::dlgsanet_config_json(model->config())}});
    fs::create_directories(dir_ / "in" / "nested");
    write(dir_ / "in" / "a.png", 30, 20, 1);
    write(dir_ / "in" / "nested" / "b.png", 12, 18, 2);
    write(dir_ / "in" / "dot.png", 1, 1, 3);  // smaller than any window or kernel of the model
    std::ofstream(dir_ / "in" / "broken.png") << "not a png";
  }
  static void write(const fs::path& path, int width, int height, int seed) {
    const at::Tensor pixels = (at::arange(width * height * 3, at::kLong).view({height, width, 3}) * (5 + seed) % 251);
    sv::write_png(path.string(), sv::tensor_to_image(pixels.to(at::kByte)));
  }
  static nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
  }
  sparsescope::test::ProcessResult sr(std::vector<std::string> args) const {
    args.insert(args.begin(), {"sr", "--weights", weights_.string()});
    return run_process(SPARSESCOPE_CLI, args);
  }
  fs::path weights_;
};

}  // namespace

TEST_F(CliSr, UpscalesFoldersReportsBadFilesAndResumes) {
  const fs::path out = dir_ / "out";
  auto r = sr({(dir_ / "in").string(), "--out", out.string(), "--tile", "0"});
  EXPECT_EQ(r.status, 1) << r.err;  // broken.png failed
  EXPECT_NE(r.err.find("broken.png"), std::string::npos) << r.err;
  const sv::Image a = sv::read_image((out / "a.png").string());
  EXPECT_EQ(a.width, 60);
  EXPECT_EQ(a.height, 40);
  const sv::Image b = sv::read_image((out / "nested" / "b.png").string());
  EXPECT_EQ(b.width, 24);
  EXPECT_EQ(b.height, 36);
  EXPECT_EQ(sv::read_image((out / "dot.png").string()).width, 2);
  auto summary = read_json(out / "summary.json");
  EXPECT_EQ(summary["succeeded"], 3);
  EXPECT_EQ(summary["failed"], 1);
  EXPECT_EQ(summary["model"], "dlgsanet_tiny_x2");

  // A rerun skips what is done; tiles larger than the image give the same pixels.
  r = sr({(dir_ / "in").string(), "--out", out.string(), "--tile", "64", "--json"});
  EXPECT_EQ(r.status, 1) << r.err;
  summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["skipped"], 3);
  EXPECT_EQ(summary["succeeded"], 0);
  r = sr({(dir_ / "in" / "a.png").string(), "--out", (dir_ / "tiled").string(), "--tile", "64"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(sv::read_image((dir_ / "tiled" / "a.png").string()).pixels, a.pixels);
  // Small tiles with context: every tile runs, the image keeps its size.
  r = sr({(dir_ / "in" / "a.png").string(), "--out", (dir_ / "small").string(), "--tile", "8", "--tile-overlap", "4"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(sv::read_image((dir_ / "small" / "a.png").string()).width, 60);
}

// --record: a trace beside each output with every block's kernels and channel attention on the
// central square, which a rerun without the trace redoes.
TEST_F(CliSr, RecordsKernelsAndChannelAttention) {
  auto r = sr({(dir_ / "in" / "a.png").string(), "--out", (dir_ / "out").string(), "--record", "--record-size", "16"});
  ASSERT_EQ(r.status, 0) << r.err;
  const sv::Trace trace = sv::load_trace((dir_ / "out" / "a.png.trace.safetensors").string());
  EXPECT_EQ(trace.info.model, "dlgsanet_tiny_x2");
  EXPECT_EQ(trace.info.layout.grid, (std::vector<int64_t>{1, 16, 16}));
  EXPECT_EQ(trace.image.sizes(), (at::IntArrayRef{16, 16, 3}));
  ASSERT_EQ(trace.sites.size(), 18u);
  EXPECT_EQ(trace.sites[0].kind, "kernel");
  EXPECT_EQ(trace.sites[0].queries, 16 * 16);
  EXPECT_EQ(trace.sites[0].keys, 49);
  EXPECT_EQ(trace.sites[1].kind, "channel");
  EXPECT_EQ(trace.sites[1].heads(), 6);
  fs::remove(dir_ / "out" / "a.png.trace.safetensors");
  r = sr({(dir_ / "in" / "a.png").string(), "--out", (dir_ / "out").string(), "--record", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["succeeded"], 1);
  EXPECT_TRUE(fs::exists(dir_ / "out" / "a.png.trace.safetensors"));
}

TEST_F(CliSr, UsageErrorsExitTwoNamingTheFlag) {
  auto r = sr({(dir_ / "in").string(), "--out", (dir_ / "o").string(), "--scale", "4"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--scale 4: dlgsanet_tiny_x2 upscales x2"), std::string::npos) << r.err;
  r = run_process(SPARSESCOPE_CLI, {"sr", "--weights", (dir_ / "none.safetensors").string(), (dir_ / "in").string(),
                                    "--out", (dir_ / "o").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--weights"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "o"));
}

#ifdef SPARSESCOPE_TEST_VIDEO
TEST_F(CliSr, UpscalesTheSelectedFramesOfAVideo) {
  const fs::path clip = dir_ / "clip.avi";
  {
    cv::VideoWriter writer(clip.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0, cv::Size(16, 12));
    ASSERT_TRUE(writer.isOpened());
    for (int i = 0; i < 5; ++i) writer.write(cv::Mat(12, 16, CV_8UC3, cv::Scalar(40 * i, 100, 200 - 40 * i)));
  }
  auto r = sr({clip.string(), "--out", (dir_ / "out").string(), "--frames-every", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* frame : {"clip.avi.frame0.png", "clip.avi.frame2.png", "clip.avi.frame4.png"}) {
    ASSERT_TRUE(fs::exists(dir_ / "out" / frame)) << frame;
    EXPECT_EQ(sv::read_image((dir_ / "out" / frame).string()).width, 32);
  }
  EXPECT_FALSE(fs::exists(dir_ / "out" / "clip.avi.frame1.png"));
}
#endif

// The bundled DLGSANet-Light x4 (assets/models; the "ours" row of lib/vision/dlgsanet/README.md):
// `sr` upscales with it when no --weights is given, and `eval --task sr` on Set5 gives the PSNR and
// SSIM that its training recorded in the model file.
TEST_F(CliSr, TheBundledModelUpscalesAndReproducesItsSet5Row) {
  const fs::path weights = fs::path(SPARSESCOPE_SAMPLES_DIR).parent_path() / "models" / "dlgsanet_light_x4.safetensors";
  ASSERT_TRUE(fs::exists(weights)) << weights;
  const fs::path photo = fs::path(SPARSESCOPE_SAMPLES_DIR) / "fashion-mnist" / "00000_ankle_boot.png";
  auto r = run_process(SPARSESCOPE_CLI, {"sr", photo.string(), "--out", (dir_ / "bundled").string()});
  ASSERT_EQ(r.status, 0) << r.err;
  const sv::Image small = sv::read_image(photo.string());
  const sv::Image big = sv::read_image((dir_ / "bundled" / "00000_ankle_boot.png").string());
  EXPECT_EQ(big.width, 4 * small.width);
  EXPECT_EQ(big.height, 4 * small.height);

  const fs::path set5 = fs::path(SPARSESCOPE_SHARED_DATA_DIR) / "sr" / "Set5";
  if (!fs::is_directory(set5)) GTEST_SKIP() << set5 << " is absent (../shared/data): the Set5 row is not measured";
  const auto training = nlohmann::json::parse(sv::load_safetensors(weights.string()).metadata.at("sparsescope.training"));
  r = run_process(SPARSESCOPE_CLI, {"eval", "--task", "sr", "--weights", weights.string(), "--dataset", set5.string(),
                                    "--scale", "4", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto scores = nlohmann::json::parse(r.out);
  EXPECT_EQ(scores["images"], 5);
  // The same computation on another CPU may round a few pixels to the other 8-bit level.
  EXPECT_NEAR(scores["psnr"].get<double>(), training["eval"]["psnr"].get<double>(), 0.01);
  EXPECT_NEAR(scores["ssim"].get<double>(), training["eval"]["ssim"].get<double>(), 1e-4);
}
