// MAE and MAE-LUT against the official code (fixtures of scripts/fixtures/make_mae_fixtures.py:
// models_mae.py and models_lut.py on random weights with fixed masking noise): outputs, losses and
// gradients within 1e-5 in float32 on the CPU.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>

#include "mae/lut_views.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/mae.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/train_task.h"
#include "mae_small.h"
#include "temp_dir.h"

namespace sv = sparsescope::vision;

namespace {

using Tensors = std::map<std::string, at::Tensor>;

Tensors load(const std::string& name) {
  const auto file = sv::load_safetensors(std::string(SPARSESCOPE_FIXTURES_DIR) + "/mae/" + name);
  return Tensors(file.tensors.begin(), file.tensors.end());
}

sv::MaeConfig small(bool lut) {
  sv::MaeConfig c = sparsescope::test::mae_small(lut ? "lut_small" : "mae_small");
  if (lut) {
    c.depth_head = c.depth_pred = 2;
    c.head_mlp_dim = 64;
  }
  return c;
}

// Every parameter and buffer of `model` from `prefix` + its official name; all must be there.
void load_weights(torch::nn::Module& model, const Tensors& t, const std::string& prefix) {
  const at::NoGradGuard no_grad;
  size_t used = 0;
  for (auto& item : model.named_parameters(true)) {
    ASSERT_TRUE(t.count(prefix + item.key())) << item.key();
    if (item.key().find("pos_embed") != std::string::npos) {  // ours is computed: it must equal theirs
      EXPECT_LE((item.value() - t.at(prefix + item.key())).abs().max().item<double>(), 1e-7) << item.key();
    }
    item.value().copy_(t.at(prefix + item.key()));
    ++used;
  }
  for (auto& item : model.named_buffers(true)) {
    ASSERT_TRUE(t.count(prefix + item.key())) << item.key();
    item.value().copy_(t.at(prefix + item.key()));
    ++used;
  }
  size_t theirs = 0;
  for (const auto& [name, tensor] : t) theirs += name.rfind(prefix, 0) == 0;
  EXPECT_EQ(used, theirs) << "parameters the official model has and ours has not";
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Within 1e-5 of `want`, relative to its largest magnitude where that exceeds 1.
void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  EXPECT_LE(max_diff(got, want), 1e-5 * std::max(1.0, want.abs().max().item<double>())) << what;
}

void expect_grads(torch::nn::Module& model, const Tensors& t) {
  const auto params = model.named_parameters(true);
  int checked = 0;
  for (const auto& [name, want] : t) {
    if (name.rfind("grad/", 0) != 0) continue;
    const at::Tensor& got = params[name.substr(5)].grad();
    ASSERT_TRUE(got.defined()) << name;
    expect_close(got, want, name);
    ++checked;
  }
  EXPECT_GE(checked, 7);
}

}  // namespace

TEST(Mae, MatchesTheOfficialModelWithItsMaskingNoise) {
  const Tensors t = load("mae_small.safetensors");
  sv::MaskedAutoencoder model(small(false));
  load_weights(*model, t, "weights/");
  const auto out = model->forward(t.at("images"), t.at("noise"), 0.75);
  EXPECT_TRUE(at::equal(out.masking.mask, t.at("mask")));
  EXPECT_EQ(out.masking.ids_keep.size(1), 16);  // int(64 * 0.25)
  expect_close(out.pred, t.at("pred"), "pred");
  EXPECT_NEAR(out.loss.item<double>(), t.at("loss").item<double>(), 1e-5);
  out.loss.backward();
  expect_grads(*model, t);
}

TEST(Mae, PatchifyInvertsUnpatchifyAndKeepsChannelsLast) {
  sv::MaskedAutoencoder model(small(false));
  const at::Tensor images = at::randn({2, 3, 32, 32});
  const at::Tensor patches = model->patchify(images);
  ASSERT_EQ(patches.sizes(), at::IntArrayRef({2, 64, 48}));
  EXPECT_TRUE(at::equal(model->unpatchify(patches), images));
  // Patch (row 1, column 2), pixel (0, 3), channel 2.
  EXPECT_EQ(patches[1][1 * 8 + 2][(0 * 4 + 3) * 3 + 2].item<float>(), images[1][2][4][11].item<float>());
  EXPECT_THROW(model->patchify(at::randn({2, 3, 30, 30})), sparsescope::Error);
}

TEST(Mae, ConfigurationsAreTheOfficialOnes) {
  const sv::MaeConfig base = sv::mae_config("mae_vit_base_patch16");
  EXPECT_EQ(base.embed_dim, 768);
  EXPECT_EQ(base.decoder_depth, 8);
  EXPECT_EQ(sv::mae_config("mae_vit_huge_patch14").patch_size, 14);
  EXPECT_EQ(sv::mae_config("lut_vit_small_patch16").depth_head, 2);
  EXPECT_THROW(sv::mae_config("mae_vit_tiny"), sparsescope::Error);
  // The encoder fine-tunes as a ViT under timm's names.
  const sv::ViTConfig vit = sv::mae_encoder_config(base);
  EXPECT_EQ(vit.num_classes, 0);
  EXPECT_EQ(vit.tokens(), 197);
}

// Pretraining, fine-tuning and k-NN load images at the encoder's size: a CIFAR-sized picture comes
// in pixel for pixel (not resized to 36 and centre-cropped, as timm's default crop_pct 0.875 would).
class MaeGeometry : public sparsescope::test::TempDirTest {};

TEST_F(MaeGeometry, ImagesOfTheModelsSizeLoadUnchanged) {
  const sv::ViTConfig vit = sv::mae_encoder_config(sparsescope::test::mae_small());
  EXPECT_EQ(vit.eval.scale_size(), 32);
  sv::Image image;
  image.width = image.height = 32;
  image.pixels.resize(32 * 32 * 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>((i * 29) % 256);
  std::filesystem::create_directories(dir_ / "a");
  sv::write_png((dir_ / "a" / "x.png").string(), image);
  const sv::ImageDataset data = sv::load_image_folder(dir_.string(), vit);
  ASSERT_EQ(data.size(), 1);
  const at::Tensor want = at::from_blob(image.pixels.data(), {32, 32, 3}, at::kByte).permute({2, 0, 1});
  EXPECT_TRUE(at::equal(data.images[0], want));
}

// main_lut.py's --head_norm_layer and --head_act_layer: the layers of head and predictor by name.
TEST(MaeLut, HeadNormAndActivationAreOptions) {
  sv::MaeConfig c = small(true);
  auto names = [](const sv::MaeConfig& config) {
    sv::MaskedAutoencoder model(config);
    std::string out;
    for (const auto& item : model->named_parameters(true)) {
      if (item.key().rfind("head.", 0) == 0) out += item.key() + " ";
    }
    return out;
  };
  EXPECT_EQ(names(c), "head.0.weight head.1.weight head.1.bias head.3.weight ");
  c.head_norm = "";
  EXPECT_EQ(names(c), "head.0.weight head.2.weight ");
  c.head_norm = "LN";
  c.head_act = "GELU";
  EXPECT_EQ(names(c), "head.0.weight head.1.weight head.1.bias head.3.weight ");
  c.head_act = "SiLU";
  EXPECT_THROW(sv::MaskedAutoencoder{c}, sparsescope::Error);
}

// The LUT student (train mode: BatchNorm over the batch) and its EMA teacher (eval mode), with
// engine_lut.py's combined loss.
TEST(MaeLut, MatchesTheOfficialStudentTeacherAndLoss) {
  const Tensors t = load("lut_small.safetensors");
  sv::MaskedAutoencoder student(small(true)), teacher(small(true));
  load_weights(*student, t, "weights/");
  load_weights(*teacher, t, "teacher/");
  student->train();
  teacher->eval();
  const auto out = student->forward_lut(t.at("view1"), t.at("view2"), t.at("noise"), 0.75);
  // Disjoint visible sets from one shuffle.
  EXPECT_EQ((out.masking.view1.mask + out.masking.mask2).eq(0).sum().item<int64_t>(), 0);
  expect_close(out.pred, t.at("pred"), "pred");
  EXPECT_NEAR(out.mae_loss.item<double>(), t.at("mae_loss").item<double>(), 1e-5);
  expect_close(out.q, t.at("q"), "q");
  const at::Tensor teacher_q = teacher->forward_lut_teacher(t.at("view1"), t.at("view2"));
  expect_close(teacher_q, t.at("teacher_q"), "teacher q");
  const at::Tensor bc = sv::lut_loss(out.q, teacher_q);
  EXPECT_NEAR(bc.item<double>(), t.at("bc_loss").item<double>(), 1e-5);
  (out.mae_loss + bc).backward();
  expect_grads(*student, t);
}

// `sparsescope train --task mae` as the library runs it: the loss of the masked patches goes down on
// a tiny image folder, the held-out loss is logged, the fixed position embeddings stay fixed, the
// weights carry the MAE model card, and an interrupted + resumed run equals the uninterrupted one.
class MaePretrain : public sparsescope::test::TempDirTest {
 protected:
  sv::TrainRequest request(const std::string& out) const {
    sv::TrainRequest r;
    r.dataset = std::string(SPARSESCOPE_FIXTURES_DIR) + "/datasets/folder";
    r.recipe.epochs = 3;
    r.recipe.batch = 4;
    r.recipe.lr = 1e-3;
    r.recipe.warmup_epochs = 1;
    r.recipe.seed = 3;
    r.recipe.out = (dir_ / out).string();
    r.options = R"({"mask_ratio": 0.5})";
    return r;
  }
};

TEST_F(MaePretrain, TrainsLogsAndResumesExactly) {
  const sv::TrainTaskEntry& task = sv::train_task("mae");
  const sv::TrainResult whole = task.run(request("whole"), {});
  ASSERT_EQ(whole.epochs.size(), 3u);
  EXPECT_EQ(whole.model_name, "mae_vit_tiny_patch4_32");
  EXPECT_LT(whole.epochs.back().train.at("mae_loss"), whole.epochs.front().train.at("mae_loss"));
  EXPECT_EQ(whole.epochs.back().eval.at("images"), 4);
  const double knn = whole.epochs.back().eval.at("knn_top1");  // the folder's two classes
  EXPECT_GE(knn, 0.0);
  EXPECT_LE(knn, 1.0);
  EXPECT_TRUE(std::isfinite(whole.epochs.back().eval.at("mae_loss")));

  const auto file = sv::load_safetensors(whole.model_path);
  ASSERT_TRUE(file.metadata.count(sv::kMaeCardKey));
  const sv::MaeConfig card = sv::mae_config_from_json(file.metadata.at(sv::kMaeCardKey));
  EXPECT_EQ(card.embed_dim, 192);
  EXPECT_TRUE(card.norm_pix_loss);
  sv::MaskedAutoencoder fresh(card);
  const Tensors weights(file.tensors.begin(), file.tensors.end());
  EXPECT_TRUE(at::equal(weights.at("pos_embed"), fresh->named_parameters()["pos_embed"])) << "fixed sin-cos";

  sv::TrainRequest part = request("part");
  part.recipe.stop_after = 1;
  EXPECT_FALSE(task.run(part, {}).finished);
  part.recipe.stop_after = 0;
  part.recipe.resume = true;
  EXPECT_TRUE(task.run(part, {}).finished);
  const auto resumed = sv::load_safetensors((dir_ / "part" / "model.safetensors").string());
  ASSERT_EQ(resumed.tensors.size(), file.tensors.size());
  for (size_t i = 0; i < file.tensors.size(); ++i) {
    EXPECT_TRUE(at::equal(resumed.tensors[i].second, file.tensors[i].second)) << file.tensors[i].first;
  }
}

TEST_F(MaePretrain, BadOptionsAreClearErrors) {
  const sv::TrainTaskEntry& task = sv::train_task("mae");
  sv::TrainRequest r = request("bad");
  r.options = R"({"mask_ratio": 1.0})";
  EXPECT_THROW(task.run(r, {}), sparsescope::Error);
  r = request("bad");
  r.model = "mae_vit_tiny";
  try {
    task.run(r, {});
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--model"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ / "bad"));
}

// LUT's views: view 1 is a crop of the reflect-padded image (flipped or not), found exactly among
// the 9 x 9 offsets; every step of view 2 keeps a gray image gray; draws come from the generator.
TEST(MaeLut, ViewsAreReflectPaddedCropsAndKeepGrayGray) {
  at::manual_seed(4);
  const at::Tensor images = at::rand({6, 3, 16, 16});
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const auto [view1, view2] = sv::detail::lut_views(images, gen);
  ASSERT_EQ(view1.sizes(), images.sizes());
  const at::Tensor padded = at::reflection_pad2d(images, {4, 4, 4, 4});
  for (int64_t b = 0; b < 6; ++b) {
    bool found = false;
    for (int64_t y = 0; y <= 8 && !found; ++y)
      for (int64_t x = 0; x <= 8 && !found; ++x) {
        const at::Tensor crop = padded[b].narrow(1, y, 16).narrow(2, x, 16);
        found = at::equal(view1[b], crop) || at::equal(view1[b], crop.flip(2));
      }
    EXPECT_TRUE(found) << "image " << b;
  }
  EXPECT_GE(view2.min().item<float>(), 0.0f);
  EXPECT_LE(view2.max().item<float>(), 1.0f);

  const at::Tensor gray = at::rand({64, 1, 16, 16}).expand({64, 3, 16, 16}).contiguous();
  at::Generator again = at::make_generator<at::CPUGeneratorImpl>(9);
  const at::Tensor g2 = sv::detail::lut_views(gray, again).second;
  EXPECT_LE((g2.select(1, 0) - g2.select(1, 1)).abs().max().item<double>(), 1e-5);
  EXPECT_LE((g2.select(1, 0) - g2.select(1, 2)).abs().max().item<double>(), 1e-5);
  at::Generator same = at::make_generator<at::CPUGeneratorImpl>(9);
  EXPECT_TRUE(at::equal(sv::detail::lut_views(gray, same).second, g2));
}

// `sparsescope train --task mae-lut`: both losses logged, the EMA decay rising, and the teacher
// kept in the checkpoint so that an interrupted + resumed run equals the uninterrupted one.
TEST_F(MaePretrain, LutTrainsAndResumesWithItsTeacher) {
  const sv::TrainTaskEntry& task = sv::train_task("mae-lut");
  auto lut_request = [&](const std::string& out) {
    sv::TrainRequest r = request(out);
    r.recipe.epochs = 2;
    r.options = R"({"ema_decay": 0.9})";
    return r;
  };
  const sv::TrainResult whole = task.run(lut_request("lut_whole"), {});
  ASSERT_EQ(whole.epochs.size(), 2u);
  EXPECT_EQ(whole.model_name, "lut_vit_tiny_patch4_32");
  for (const auto& e : whole.epochs) {
    EXPECT_TRUE(std::isfinite(e.train.at("lut_loss")));
    EXPECT_TRUE(std::isfinite(e.train.at("mae_loss")));
  }
  EXPECT_GT(whole.epochs[1].train.at("ema_decay"), whole.epochs[0].train.at("ema_decay"));
  EXPECT_LT(whole.epochs[1].train.at("ema_decay"), 1.0);

  sv::TrainRequest part = lut_request("lut_part");
  part.recipe.stop_after = 1;
  EXPECT_FALSE(task.run(part, {}).finished);
  part.recipe.stop_after = 0;
  part.recipe.resume = true;
  EXPECT_TRUE(task.run(part, {}).finished);
  const auto a = sv::load_safetensors(whole.model_path);
  const auto b = sv::load_safetensors((dir_ / "lut_part" / "model.safetensors").string());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_TRUE(at::equal(a.tensors[i].second, b.tensors[i].second)) << a.tensors[i].first;
  }
  const auto checkpoint = sv::load_safetensors((dir_ / "lut_part" / "checkpoint.safetensors").string());
  bool teacher = false;
  for (const auto& [name, tensor] : checkpoint.tensors) teacher = teacher || name == "task/teacher/head.0.weight";
  EXPECT_TRUE(teacher);

  sv::TrainRequest mae_model = lut_request("bad");
  mae_model.model = "mae_vit_tiny_patch4_32";  // no projector heads
  EXPECT_THROW(task.run(mae_model, {}), sparsescope::Error);
}

// The pretraining tasks on the GPU with bfloat16 autocast (the views, masking and EMA on the device).
TEST_F(MaePretrain, BothTasksRunOnCudaInBfloat16) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  for (const char* name : {"mae", "mae-lut"}) {
    sv::TrainRequest r = request(std::string("cuda_") + name);
    r.recipe.epochs = 2;
    r.recipe.device = "cuda";
    r.recipe.precision = sv::Precision::BF16;
    r.options = "{}";
    const sv::TrainResult result = sv::train_task(name).run(r, {});
    ASSERT_TRUE(result.finished) << name;
    for (const auto& [metric, value] : result.epochs.back().train) EXPECT_TRUE(std::isfinite(value)) << name << " " << metric;
    EXPECT_TRUE(std::isfinite(result.epochs.back().eval.at("mae_loss"))) << name;
  }
}
