// Image-text pairs and the "clip" training task on a few generated pictures and a small BPE
// vocabulary (so that it runs without ../shared/data): skipped lines and files reported, training
// that evaluates retrieval and zero-shot accuracy, resumes exactly and ships a model with its card.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/train_task.h"
#include "sparsescope/vlm/clip.h"
#include "sparsescope/vlm/clip_data.h"
#include "sparsescope/vlm/register.h"
#include "image_text_files.h"
#include "temp_dir.h"

namespace sl = sparsescope::vlm;
namespace sv = sparsescope::vision;
namespace fs = std::filesystem;

namespace {

class ClipTraining : public sparsescope::test::TempDirTest {
 protected:
  void picture(const fs::path& path, int r, int g, int b) { sparsescope::test::write_picture(path, r, g, b); }
  // Pictures and their pairs file: red ones "a red square", blue ones "a blue square".
  fs::path pairs() {
    picture(dir_ / "img" / "r1.png", 200, 20, 20);
    picture(dir_ / "img" / "r2.png", 180, 40, 10);
    picture(dir_ / "img" / "b1.png", 20, 20, 200);
    picture(dir_ / "img" / "b2.png", 10, 50, 180);
    std::ofstream(dir_ / "img" / "broken.png") << "not a png";
    const fs::path tsv = dir_ / "pairs.tsv";
    std::ofstream(tsv) << "filepath\ttitle\n"
                          "img/r1.png\ta red square\n"
                          "img/r1.png\tred\n"
                          "img/r2.png\ta red square\n"
                          "img/b1.png\ta blue square\n"
                          "img/broken.png\ta broken file\n"
                          "img/b2.png\ta blue square\textra column\n"
                          "img/b2.png\ta blue square\n"
                          "img/missing.png\tnothing\n";
    return tsv;
  }
  fs::path vocab() { return sparsescope::test::write_small_vocab(dir_); }
};

sv::TrainRecipe recipe(const fs::path& out) {
  sv::TrainRecipe r;
  sv::train_task("clip").recipe_defaults(r);
  r.epochs = 3;
  r.batch = 2;
  r.eval_batch = 3;
  r.warmup_epochs = 1;
  r.out = out.string();
  return r;
}

}  // namespace

TEST_F(ClipTraining, PairsSkipBadLinesAndFilesAndShareImages) {
  const sl::ImageTextPairs p = sl::load_image_text_pairs(pairs().string(), sl::clip_eval_transform(sl::clip_config("clip_tiny")));
  EXPECT_EQ(p.images.sizes(), (at::IntArrayRef{4, 3, 64, 64}));
  EXPECT_EQ(p.images.scalar_type(), at::kByte);
  ASSERT_EQ(p.captions.size(), 5u);
  EXPECT_EQ(p.caption_image, (std::vector<int64_t>{0, 0, 1, 2, 3}));
  EXPECT_EQ(p.captions[1], "red");
  ASSERT_EQ(p.failures.size(), 3u);  // broken.png, the line with three columns, missing.png
  EXPECT_NE(p.failures[0].first.find("broken.png"), std::string::npos);
  EXPECT_NE(p.failures[1].first.find("pairs.tsv:7"), std::string::npos);
  EXPECT_NE(p.failures[2].first.find("missing.png"), std::string::npos);
  const sl::ImageTextPairs first = sl::load_image_text_pairs(pairs().string(), sl::clip_eval_transform(sl::clip_config("clip_tiny")), 2);
  EXPECT_EQ(first.captions.size(), 2u);
  EXPECT_EQ(first.images.size(0), 1);
  std::ofstream(dir_ / "bad.tsv") << "path\tcaption\nx.png\ty\n";
  try {
    sl::load_image_text_pairs((dir_ / "bad.tsv").string(), {});
    FAIL() << "read a file without a filepath column";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no column 'filepath'"), std::string::npos) << e.what();
  }
}

TEST_F(ClipTraining, RegionsAreTheCropsOfTheirBoxes) {
  picture(dir_ / "img" / "r1.png", 200, 20, 20);
  picture(dir_ / "img" / "b1.png", 20, 20, 200);
  const fs::path tsv = dir_ / "boxes.tsv";
  std::ofstream(tsv) << "filepath\ttitle\tboxes\n"
                        "img/r1.png\ta red square\t0,0,20,15;10,10,10,20;30,5,60,25\n"
                        "img/r1.png\tred\t\n"
                        "img/b1.png\ta blue square\t\n"
                        "img/b1.png\tblue\t1,2,3\n";
  const sl::ImageTextPairs p =
      sl::load_image_text_pairs(tsv.string(), sl::clip_eval_transform(sl::clip_config("clip_tiny")), 0, "filepath", "title", "boxes");
  ASSERT_EQ(p.regions.size(), 2u);
  EXPECT_EQ(p.regions[0].sizes(), (at::IntArrayRef{2, 3, 64, 64}));  // the empty box is dropped, the last clipped
  EXPECT_EQ(p.regions[1].size(0), 0);
  // The first crop is red throughout, its left edge as dark as the picture's.
  EXPECT_GT(p.regions[0][0][0].to(at::kFloat).mean().item<double>(), 150);
  EXPECT_LT(p.regions[0][0][2].to(at::kFloat).mean().item<double>(), 60);
  ASSERT_EQ(p.failures.size(), 1u);
  EXPECT_NE(p.failures[0].second.find("x1,y1,x2,y2"), std::string::npos) << p.failures[0].second;
  EXPECT_EQ(p.captions.size(), 3u);
}

TEST_F(ClipTraining, TrainsEvaluatesResumesAndShipsACard) {
  sl::register_vlm_methods();
  const fs::path tsv = pairs();
  picture(dir_ / "classes" / "red" / "1.png", 200, 30, 30);
  picture(dir_ / "classes" / "blue" / "1.png", 30, 30, 200);
  sv::TrainRequest request;
  request.dataset = tsv.string();
  request.eval_dataset = tsv.string();
  request.options = nlohmann::json{{"vocab", vocab().string()}, {"zero_shot", (dir_ / "classes").string()}}.dump();
  request.recipe = recipe(dir_ / "straight");
  const sv::TrainTaskEntry& task = sv::train_task("clip");
  const sv::TrainResult straight = task.run(request, {});
  ASSERT_EQ(straight.epochs.size(), 3u);
  EXPECT_EQ(straight.failures.size(), 6u);  // three in the training pairs, three in the held-out ones
  for (const auto& e : straight.epochs) {
    EXPECT_TRUE(std::isfinite(e.train_loss));
    EXPECT_TRUE(e.eval.count("zero_shot_top1") && e.eval.count("i2t_r1") && e.eval.count("t2i_r10")) << e.epoch;
    EXPECT_LE(e.train.at("logit_scale"), 100.0 + 1e-9);
  }
  // Stopped after the first epoch, then resumed: the same weights as the straight run.
  request.recipe = recipe(dir_ / "chunks");
  request.recipe.stop_after = 1;
  EXPECT_FALSE(task.run(request, {}).finished);
  request.recipe.stop_after = 0;
  request.recipe.resume = true;
  const sv::TrainResult resumed = task.run(request, {});
  ASSERT_TRUE(resumed.finished);
  const sl::CLIP a = sl::load_clip(straight.model_path);
  const sl::CLIP b = sl::load_clip(resumed.model_path);
  EXPECT_EQ(a->config().name, "clip_tiny");
  auto pb = b->named_parameters();
  for (const auto& item : a->named_parameters()) EXPECT_TRUE(item.value().equal(pb[item.key()])) << item.key();
  EXPECT_THROW(sl::load_clip((dir_ / "pairs.tsv").string()), sparsescope::Error);
}

TEST_F(ClipTraining, BadOptionsNameTheirFlag) {
  sl::register_vlm_methods();
  sv::TrainRequest request;
  request.dataset = (dir_ / "none.tsv").string();
  request.options = nlohmann::json{{"vocab", vocab().string()}}.dump();
  request.recipe = recipe(dir_ / "out");
  const sv::TrainTaskEntry& task = sv::train_task("clip");
  auto message = [&] {
    try {
      task.run(request, {});
    } catch (const sparsescope::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message().rfind("--dataset: ", 0), 0u) << message();
  request.dataset = pairs().string();
  request.model = "ViT-Q-1";
  EXPECT_EQ(message().rfind("--model: ", 0), 0u) << message();
  request.model = "";
  request.options = nlohmann::json{{"vocab", vocab().string()}, {"zero_shot", (dir_ / "nothing").string()}}.dump();
  EXPECT_EQ(message().rfind("--zero-shot: ", 0), 0u) << message();
}
