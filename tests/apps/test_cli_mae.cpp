// `sparsescope reconstruct` as users run it, on a randomly initialised small MAE saved with its card:
// one side-by-side picture per readable image (masked | reconstruction | original), a bad file
// reported with exit status 1, --record traces whose encoder sites cover the visible patches, a rerun
// that skips finished images, and clear usage errors for a mask ratio outside (0, 1) and weights of
// another task.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

// LibTorch's headers before Qt's (process.h), whose `slots` macro breaks them.
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/mae.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/trace.h"
#include "mae_small.h"
#include "process.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
namespace sv = sparsescope::vision;

namespace {

class CliReconstruct : public sparsescope::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    const sv::MaeConfig c = sparsescope::test::mae_small("mae_cli_test", /*decoder_depth=*/1);
    sv::MaskedAutoencoder model(c);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
    model->initialize(gen);
    sv::NamedTensors weights;
    for (const auto& item : model->named_parameters()) weights.emplace_back(item.key(), item.value().detach());
    weights_ = (dir_ / "mae.safetensors").string();
    sv::save_safetensors(weights_, weights, {{sv::kMaeCardKey, sv::mae_config_json(c)}});
    plain_ = (dir_ / "plain.safetensors").string();
    sv::save_safetensors(plain_, weights, {});
  }
  sparsescope::test::ProcessResult reconstruct(std::vector<std::string> args) const {
    args.insert(args.begin(), "reconstruct");
    return sparsescope::test::run_process(SPARSESCOPE_CLI, args);
  }
  std::string weights_, plain_;
};

}  // namespace

TEST_F(CliReconstruct, WritesMaskedReconstructionAndOriginalSideBySide) {
  fs::create_directories(dir_ / "in");
  fs::copy_file(std::string(SPARSESCOPE_SAMPLES_DIR) + "/chelsea.png", dir_ / "in" / "cat.png");
  std::ofstream(dir_ / "in" / "broken.png") << "not a png";
  const std::string out = (dir_ / "out").string();
  auto r = reconstruct({(dir_ / "in").string(), "--out", out, "--weights", weights_, "--record", "--seed", "3", "--json"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("broken.png"), std::string::npos) << r.err;
  const auto summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["model"], "mae_cli_test");
  ASSERT_TRUE(summary["loss"].contains("cat.png"));
  const sv::Image picture = sv::read_image(out + "/cat.png");
  EXPECT_EQ(picture.width, 3 * 128 + 2 * 2);  // 32 px at zoom 4, three panels 2 px apart
  EXPECT_EQ(picture.height, 128);
  const sv::Trace trace = sv::load_trace(out + "/cat.png.trace.safetensors");
  EXPECT_EQ(trace.info.layout.visible.size(), 16u);
  EXPECT_EQ(trace.sites.front().subset, sv::kVisibleTokens);
  EXPECT_EQ(trace.sites.front().queries, 17);
  EXPECT_EQ(trace.sites.back().name, "decoder_blocks.0.attn");
  // `trace info` gives each head's mean attention distance, the encoder's over the visible patches;
  // `trace export` draws every site (no rollout: encoder and decoder see different tokens).
  r = sparsescope::test::run_process(SPARSESCOPE_CLI, {"trace", "info", out + "/cat.png.trace.safetensors", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto info = nlohmann::json::parse(r.out)[0];
  EXPECT_EQ(info["sites"][0]["subset"], "visible");
  for (const auto& site : info["sites"]) {
    for (const auto& head : site["heads"]) EXPECT_GT(head["distance"].get<double>(), 0.0) << site["name"];
  }
  r = sparsescope::test::run_process(SPARSESCOPE_CLI, {"trace", "export", out + "/cat.png.trace.safetensors", "--out",
                                                       (dir_ / "maps").string()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "maps" / "cat.png" / "blocks.0.attn.png"));
  EXPECT_TRUE(fs::exists(dir_ / "maps" / "cat.png" / "decoder_blocks.0.attn.png"));
  EXPECT_FALSE(fs::exists(dir_ / "maps" / "cat.png" / "rollout.png"));

  // The same seed removes the same patches; a finished image is skipped.
  r = reconstruct({(dir_ / "in" / "cat.png").string(), "--out", (dir_ / "again").string(), "--weights", weights_,
                   "--record", "--seed", "3"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(sv::load_trace((dir_ / "again" / "cat.png.trace.safetensors").string()).info.layout.visible,
            trace.info.layout.visible);
  r = reconstruct({(dir_ / "in" / "cat.png").string(), "--out", (dir_ / "again").string(), "--weights", weights_, "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["skipped"], 1);
}

TEST_F(CliReconstruct, BadRatiosAndWeightsAreUsageErrors) {
  const std::string image = std::string(SPARSESCOPE_SAMPLES_DIR) + "/chelsea.png";
  for (const char* ratio : {"0", "1", "1.5"}) {
    const auto r = reconstruct({image, "--out", (dir_ / "o").string(), "--weights", weights_, "--mask-ratio", ratio});
    EXPECT_EQ(r.status, 2) << ratio;
    EXPECT_NE(r.err.find("--mask-ratio"), std::string::npos) << r.err;
  }
  auto r = reconstruct({image, "--out", (dir_ / "o").string(), "--weights", weights_, "--mask-ratio", "0.99"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("leaves none of the model's 64 patches visible"), std::string::npos) << r.err;
  r = reconstruct({image, "--out", (dir_ / "o").string(), "--weights", plain_});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--weights: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sparsescope.mae"), std::string::npos) << r.err;
}

// `eval --task knn` and `--task linear-probe` on an MAE's encoder: test images that are copies of
// training images find themselves (top-1 100 % at k = 1); a dataset without a test split is a usage
// error.
TEST_F(CliReconstruct, KnnFindsCopiesOfTrainingImages) {
  for (const char* split : {"train", "test"}) {
    for (int c = 0; c < 2; ++c) {
      fs::create_directories(dir_ / "data" / split / (c == 0 ? "warm" : "cold"));
      for (int i = 0; i < 3; ++i) {
        sv::Image image;
        image.width = image.height = 32;
        image.pixels.resize(32 * 32 * 3);
        for (size_t p = 0; p < image.pixels.size(); ++p) {
          image.pixels[p] = static_cast<uint8_t>((p * (7 + 5 * i + 11 * c) + (p % 3 == 0 ? 100 * c : 0)) % 256);
        }
        sv::write_png((dir_ / "data" / split / (c == 0 ? "warm" : "cold") / (std::to_string(i) + ".png")).string(), image);
      }
    }
  }
  auto r = sparsescope::test::run_process(SPARSESCOPE_CLI, {"eval", "--task", "knn", "--weights", weights_, "--dataset",
                                                            (dir_ / "data").string(), "--knn-k", "1", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["train_images"], 6);
  EXPECT_EQ(out["test_images"], 6);
  EXPECT_DOUBLE_EQ(out["knn_top1"].get<double>(), 1.0);
  r = sparsescope::test::run_process(SPARSESCOPE_CLI, {"eval", "--task", "knn", "--weights", weights_, "--dataset",
                                                       (dir_ / "data" / "train").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("k-NN needs a training split"), std::string::npos) << r.err;

  // The linear probe on the same features: six points in the encoder's 192 dimensions are
  // separable, and the test images are the training images.
  r = sparsescope::test::run_process(SPARSESCOPE_CLI, {"eval", "--task", "linear-probe", "--weights", weights_,
                                                       "--dataset", (dir_ / "data").string(), "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto probe = nlohmann::json::parse(r.out);
  EXPECT_DOUBLE_EQ(probe["train_top1"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(probe["linear_probe_top1"].get<double>(), 1.0);
  EXPECT_GT(probe["iterations"].get<int64_t>(), 0);
  r = sparsescope::test::run_process(SPARSESCOPE_CLI, {"eval", "--task", "linear-probe", "--weights", weights_,
                                                       "--dataset", (dir_ / "data").string(), "--probe-l2", "-1"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--probe-l2"), std::string::npos) << r.err;
}
