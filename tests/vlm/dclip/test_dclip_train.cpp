// DCLIP's two training stages on a few generated pictures with boxes, from a randomly initialised
// clip_tiny (a small vocabulary, no ../shared/data): the teacher trains and ships its card, the
// student trains only what upstream's filter leaves trainable and ships a CLIP card.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/train_task.h"
#include "sparsescope/vlm/clip.h"
#include "sparsescope/vlm/dclip.h"
#include "sparsescope/vlm/register.h"
#include "image_text_files.h"
#include "temp_dir.h"

namespace sl = sparsescope::vlm;
namespace sv = sparsescope::vision;
namespace fs = std::filesystem;

namespace {

class DclipTraining : public sparsescope::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    sl::register_vlm_methods();
    using sparsescope::test::write_picture;
    write_picture(dir_ / "img" / "r1.png", 200, 20, 20);
    write_picture(dir_ / "img" / "r2.png", 180, 40, 10);
    write_picture(dir_ / "img" / "b1.png", 20, 20, 200);
    write_picture(dir_ / "img" / "b2.png", 10, 50, 180);
    std::ofstream(dir_ / "pairs.tsv") << "filepath\ttitle\tboxes\n"
                                         "img/r1.png\ta red square\t0,0,20,15;10,5,40,30\n"
                                         "img/r1.png\tred\t\n"
                                         "img/r2.png\ta red square\t5,5,25,25\n"
                                         "img/b1.png\ta blue square\t\n"
                                         "img/b2.png\tblue\t0,0,40,30\n";
    at::manual_seed(0);
    const sl::CLIP model(sl::clip_config("clip_tiny"));
    sv::NamedTensors weights;
    for (const auto& item : model->named_parameters()) weights.emplace_back(item.key(), item.value().detach());
    clip_ = (dir_ / "clip.safetensors").string();
    sv::save_safetensors(clip_, weights, {{sl::kClipCardKey, sl::clip_config_json(model->config())}});
    vocab_ = sparsescope::test::write_small_vocab(dir_).string();
  }
  sv::TrainRequest request(const std::string& task, nlohmann::json options, const std::string& out) const {
    sv::TrainRequest r;
    r.dataset = (dir_ / "pairs.tsv").string();
    r.eval_dataset = r.dataset;
    options["clip"] = clip_;
    options["vocab"] = vocab_;
    r.options = options.dump();
    sv::train_task(task).recipe_defaults(r.recipe);
    r.recipe.epochs = 2;
    r.recipe.batch = 2;
    r.recipe.eval_batch = 3;
    r.recipe.out = (dir_ / out).string();
    return r;
  }
  std::string clip_, vocab_;
};

}  // namespace

TEST_F(DclipTraining, TeacherThenStudent) {
  const sv::TrainTaskEntry& teacher_task = sv::train_task("dclip-teacher");
  const sv::TrainResult teacher = teacher_task.run(request("dclip-teacher", {}, "teacher"), {});
  ASSERT_TRUE(teacher.finished);
  for (const auto& e : teacher.epochs) EXPECT_TRUE(std::isfinite(e.eval.at("loss"))) << e.epoch;
  const sl::DclipTeacher loaded = sl::load_dclip_teacher(teacher.model_path);
  EXPECT_EQ(loaded->config().embed_dim, 128);

  const sv::TrainResult student = sv::train_task("dclip")
                                      .run(request("dclip", {{"teacher", teacher.model_path}}, "student"), {});
  ASSERT_TRUE(student.finished);
  const auto& last = student.epochs.back();
  for (const char* k : {"cos_image", "cos_text", "contrastive"}) EXPECT_TRUE(std::isfinite(last.train.at(k))) << k;
  EXPECT_TRUE(last.eval.count("i2t_r1") && last.eval.count("t2i_r5"));
  // Upstream's filter: the image tower's attention projections and visual.proj train, its other
  // weights stay; the text side trains.
  const sl::CLIP before = sl::load_clip(clip_);
  const sl::CLIP after = sl::load_clip(student.model_path);
  auto p0 = before->named_parameters();
  auto p1 = after->named_parameters();
  EXPECT_TRUE(p0["visual.conv1.weight"].equal(p1["visual.conv1.weight"]));
  EXPECT_TRUE(p0["visual.transformer.resblocks.0.mlp.c_fc.weight"].equal(p1["visual.transformer.resblocks.0.mlp.c_fc.weight"]));
  EXPECT_FALSE(p0["visual.proj"].equal(p1["visual.proj"]));
  EXPECT_FALSE(p0["visual.transformer.resblocks.0.attn.in_proj_weight"].equal(p1["visual.transformer.resblocks.0.attn.in_proj_weight"]));
  EXPECT_FALSE(p0["text_projection"].equal(p1["text_projection"]));
}

TEST_F(DclipTraining, MissingInputsNameTheirFlag) {
  auto message = [](const sv::TrainRequest& r, const std::string& task) {
    try {
      sv::train_task(task).run(r, {});
    } catch (const sparsescope::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message(request("dclip", {}, "s"), "dclip").rfind("--teacher", 0), 0u);
  sv::TrainRequest r = request("dclip-teacher", {}, "t");
  r.options = nlohmann::json{{"vocab", vocab_}}.dump();
  EXPECT_EQ(message(r, "dclip-teacher").rfind("--clip", 0), 0u);
  std::ofstream(dir_ / "plain.tsv") << "filepath\ttitle\nimg/r1.png\tred\n";
  r = request("dclip-teacher", {}, "t");
  r.dataset = (dir_ / "plain.tsv").string();
  const std::string m = message(r, "dclip-teacher");
  EXPECT_EQ(m.rfind("--dataset", 0), 0u) << m;
  EXPECT_NE(m.find("boxes"), std::string::npos) << m;
}
