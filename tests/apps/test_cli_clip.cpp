// `sparsescope clip --images ... --texts ...` as users run it, on a randomly initialised clip_tiny saved with its card:
// probabilities over the texts that sum to 1 for each readable image, an unreadable image reported
// with exit status 1, a trace per image with --record, weights that are not CLIP's a usage error
// naming --weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

// LibTorch's headers before Qt's (process.h), whose `slots` macro breaks them.
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/trace.h"
#include "sparsescope/vlm/clip.h"
#include "sparsescope/vlm/dclip.h"
#include "process.h"
#include "temp_dir.h"

namespace {

class CliClip : public sparsescope::test::TempDirTest {
 protected:
  // A randomly initialised clip_tiny saved with its card, and a small vocabulary.
  void SetUp() override {
    TempDirTest::SetUp();
    vocab_ = (dir_ / "merges.txt").string();
    std::ofstream(vocab_) << "#version: 0.2\nh e\nl l\nhe ll\nhell o</w>\n";
    const sparsescope::vlm::CLIP model(sparsescope::vlm::clip_config("clip_tiny"));
    sparsescope::vision::NamedTensors weights;
    for (const auto& item : model->named_parameters()) weights.emplace_back(item.key(), item.value().detach());
    weights_ = (dir_ / "clip.safetensors").string();
    sparsescope::vision::save_safetensors(
        weights_, weights, {{sparsescope::vlm::kClipCardKey, sparsescope::vlm::clip_config_json(model->config())}});
  }
  std::string vocab_, weights_;
};

}  // namespace

TEST_F(CliClip, GivesEachImageProbabilitiesOverTheTexts) {
  const std::string& vocab = vocab_;
  const std::string& path = weights_;
  const std::string image = std::string(SPARSESCOPE_SAMPLES_DIR) + "/chelsea.png";
  auto clip = [](std::vector<std::string> args) {
    args.insert(args.begin(), "clip");
    return sparsescope::test::run_process(SPARSESCOPE_CLI, args);
  };
  auto r = clip({"--weights", path, "--vocab", vocab, "--images", image, (dir_ / "none.png").string(), "--texts", "hello",
                 "hell", "he", "--json"});
  EXPECT_EQ(r.status, 1) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  ASSERT_EQ(out["images"].size(), 1u);
  double total = 0;
  for (const double p : out["images"][0]["probabilities"]) total += p;
  EXPECT_NEAR(total, 1.0, 1e-5);
  EXPECT_EQ(out["failures"].size(), 1u);
  EXPECT_NE(r.err.find("none.png"), std::string::npos) << r.err;
  // --record: a trace of the image tower per image, the texts as its top-k, best first.
  r = clip({"--weights", path, "--vocab", vocab, "--images", image, "--texts", "hello", "he", "--record",
            (dir_ / "traces").string()});
  ASSERT_EQ(r.status, 0) << r.err;
  const sparsescope::vision::Trace trace = sparsescope::vision::load_trace((dir_ / "traces" / "chelsea.png.trace.safetensors").string());
  EXPECT_EQ(trace.sites.size(), 6u);
  EXPECT_EQ(trace.sites[0].name, "visual.transformer.resblocks.0.attn");
  EXPECT_EQ(trace.info.layout.tokens(), 65);
  ASSERT_EQ(trace.info.topk.size(), 2u);
  EXPECT_GE(trace.info.topk[0].score, trace.info.topk[1].score);
  EXPECT_EQ(trace.image.sizes(), (at::IntArrayRef{64, 64, 3}));
  r = clip({"--weights", image, "--vocab", vocab, "--images", image, "--texts", "x"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--weights"), std::string::npos) << r.err;
}

// `sparsescope dclip`: a random teacher between the words of each text and the boxes of chelsea.png,
// every map a distribution, a trace per text with --record; boxes outside the image and a teacher
// file that is not one are errors naming them.
TEST_F(CliClip, DclipShowsTheTeachersCrossAttention) {
  const sparsescope::vlm::DclipTeacher teacher(sparsescope::vlm::DclipTeacherConfig{128, 8, 2.0});
  sparsescope::vision::NamedTensors weights;
  for (const auto& item : teacher->named_parameters()) weights.emplace_back(item.key(), item.value().detach());
  const std::string teacher_path = (dir_ / "teacher.safetensors").string();
  sparsescope::vision::save_safetensors(
      teacher_path, weights,
      {{sparsescope::vlm::kDclipTeacherCardKey, sparsescope::vlm::dclip_teacher_config_json(teacher->config())}});
  const std::string image = std::string(SPARSESCOPE_SAMPLES_DIR) + "/chelsea.png";
  auto dclip = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"dclip", "--weights", weights_, "--vocab", vocab_, "--image", image});
    return sparsescope::test::run_process(SPARSESCOPE_CLI, args);
  };
  auto r = dclip({"--teacher", teacher_path, "--boxes", "0,0,100,100;50,20,300,200", "--texts", "hello hello", "he",
                  "--record", (dir_ / "traces").string(), "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  ASSERT_EQ(out["texts"].size(), 2u);
  const auto& first = out["texts"][0];
  EXPECT_EQ(first["words"], (std::vector<std::string>{"hello", "hello"}));
  ASSERT_EQ(first["text_to_image"].size(), 2u);
  for (const auto& row : first["text_to_image"]) {
    ASSERT_EQ(row.size(), 2u);
    EXPECT_NEAR(row[0].get<double>() + row[1].get<double>(), 1.0, 1e-5);
  }
  ASSERT_EQ(first["image_to_text"].size(), 2u);
  const auto trace = sparsescope::vision::load_trace((dir_ / "traces" / "chelsea.png.2.trace.safetensors").string());
  EXPECT_EQ(trace.info.layout.kind, sparsescope::vision::kCrossLayout);
  EXPECT_EQ(trace.info.layout.words, (std::vector<std::string>{"h", "e"}));  // no merge makes "he</w>"
  EXPECT_EQ(trace.info.layout.regions.size(), 2u);

  r = dclip({"--teacher", teacher_path, "--boxes", "0,0,100,100;900,900,950,950", "--texts", "hello"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("box 2 (900,900,950,950) is empty or outside"), std::string::npos) << r.err;
  r = dclip({"--teacher", teacher_path, "--boxes", "0,0,100", "--texts", "hello"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--boxes: box '0,0,100'"), std::string::npos) << r.err;
  r = dclip({"--teacher", weights_, "--boxes", "0,0,100,100", "--texts", "hello"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--teacher"), std::string::npos) << r.err;
}

// `eval --task retrieval` on pairs (a missing image reported with exit status 1) and `eval --task
// zero-shot` on class folders, in JSON.
TEST_F(CliClip, EvalReportsRetrievalAndZeroShot) {
  const std::string image = std::string(SPARSESCOPE_SAMPLES_DIR) + "/chelsea.png";
  std::filesystem::create_directories(dir_ / "classes" / "cat");
  std::filesystem::create_directories(dir_ / "classes" / "hello_kitty");
  std::filesystem::copy_file(image, dir_ / "classes" / "cat" / "a.png");
  std::filesystem::copy_file(image, dir_ / "classes" / "hello_kitty" / "b.png");
  std::ofstream(dir_ / "pairs.tsv") << "filepath\ttitle\n" << image << "\thello\n" << image << "\thell\nnone.png\the\n";
  auto eval = [&](const std::string& task, const std::string& dataset) {
    return sparsescope::test::run_process(SPARSESCOPE_CLI, {"eval", "--task", task, "--weights", weights_, "--vocab", vocab_,
                                                            "--dataset", dataset, "--json"});
  };
  auto r = eval("retrieval", (dir_ / "pairs.tsv").string());
  EXPECT_EQ(r.status, 1) << r.err;  // none.png
  auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["retrieval"]["images"], 1);
  EXPECT_EQ(out["retrieval"]["captions"], 2);
  EXPECT_DOUBLE_EQ(out["retrieval"]["image_to_text"]["r1"].get<double>(), 100.0);  // both captions are its own
  EXPECT_EQ(out["failed"], 1);
  r = eval("zero-shot", (dir_ / "classes").string());
  EXPECT_EQ(r.status, 0) << r.err;
  out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["zero_shot"]["images"], 2);
  EXPECT_EQ(out["zero_shot"]["classes"][1], "hello kitty");
  const double top1 = out["zero_shot"]["top1"];
  EXPECT_TRUE(top1 == 0 || top1 == 50 || top1 == 100) << top1;
}

// The bundled clip_tiny's zero-shot number (assets/README.md) from `sparsescope eval`, on the first
// 100 CIFAR-10 test images of each class as scripts/gpu/prepare_clip_data.py selects them.
TEST_F(CliClip, BundledModelReproducesItsZeroShotTopOne) {
  namespace fs = std::filesystem;
  const fs::path shared = SPARSESCOPE_SHARED_DATA_DIR;
  const fs::path cifar = shared / "cifar10" / "test", vocab = shared / "clip" / "bpe_simple_vocab_16e6.txt.gz";
  if (!fs::exists(cifar) || !fs::exists(vocab)) GTEST_SKIP() << "../shared/data is absent: no CIFAR-10 or CLIP vocabulary";
  for (const auto& cls : fs::directory_iterator(cifar)) {
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(cls.path())) files.push_back(f.path());
    std::sort(files.begin(), files.end());
    fs::create_directories(dir_ / "zeroshot" / cls.path().filename());
    for (size_t i = 0; i < 100 && i < files.size(); ++i) {
      fs::copy_file(files[i], dir_ / "zeroshot" / cls.path().filename() / files[i].filename());
    }
  }
  const auto r = sparsescope::test::run_process(
      SPARSESCOPE_CLI, {"eval", "--task", "zero-shot", "--weights", (fs::path(SPARSESCOPE_SAMPLES_DIR).parent_path() / "models" / "clip_tiny.safetensors").string(),
                        "--vocab", vocab.string(), "--dataset", (dir_ / "zeroshot").string(), "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["zero_shot"]["images"], 1000);
  EXPECT_NEAR(out["zero_shot"]["top1"].get<double>(), 57.6, 0.05);
}

// The bundled teacher on the bundled clip_tiny, with every default: each word of the caption gets a
// distribution over the boxes.
TEST_F(CliClip, BundledDclipTeacherRunsWithItsDefaults) {
  const std::filesystem::path vocab = std::filesystem::path(SPARSESCOPE_SHARED_DATA_DIR) / "clip" / "bpe_simple_vocab_16e6.txt.gz";
  if (!std::filesystem::exists(vocab)) GTEST_SKIP() << "../shared/data is absent: no CLIP vocabulary";
  const auto r = sparsescope::test::run_process(
      SPARSESCOPE_CLI, {"dclip", "--vocab", vocab.string(), "--image", std::string(SPARSESCOPE_SAMPLES_DIR) + "/chelsea.png",
                        "--boxes", "100,20,330,290;0,0,100,100", "--texts", "a photo of a cat", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["texts"][0]["words"], (std::vector<std::string>{"a", "photo", "of", "a", "cat"}));
  EXPECT_EQ(out["heads"], 8);
  for (const auto& row : out["texts"][0]["text_to_image"]) EXPECT_NEAR(row[0].get<double>() + row[1].get<double>(), 1.0, 1e-5);
}
