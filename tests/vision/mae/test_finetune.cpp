// The pieces of MAE's fine-tuning recipe: the model of models_vit.py (global pool or class token)
// and util/lr_decay.py's layer-wise groups against fixtures from the official code
// (scripts/fixtures/make_mae_fixtures.py), stochastic depth and timm's Mixup from their definitions.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "sparsescope/vision/mixup.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/train_optim.h"
#include "sparsescope/vision/train_task.h"
#include "sparsescope/vision/vit.h"
#include "temp_dir.h"

namespace sv = sparsescope::vision;

namespace {

const sv::SafetensorsFile& fixture() {
  static const sv::SafetensorsFile file =
      sv::load_safetensors(std::string(SPARSESCOPE_FIXTURES_DIR) + "/mae/finetune_small.safetensors");
  return file;
}

at::Tensor tensor(const std::string& name) {
  for (const auto& [n, t] : fixture().tensors) {
    if (n == name) return t;
  }
  ADD_FAILURE() << "fixture has no " << name;
  return {};
}

sv::ViTConfig small_config(bool global_pool) {
  sv::ViTConfig c;
  c.name = "vit_test_finetune";
  c.img_size = 32;
  c.patch_size = 4;
  c.embed_dim = 48;
  c.depth = 2;
  c.num_heads = 3;
  c.num_classes = 10;
  c.global_pool = global_pool;
  return c;
}

sv::VisionTransformer fixture_model(bool global_pool) {
  sv::VisionTransformer model(small_config(global_pool));
  const std::string prefix = global_pool ? "gp/weights/" : "cls/weights/";
  at::NoGradGuard no_grad;
  for (auto& item : model->named_parameters(/*recurse=*/true)) item.value().copy_(tensor(prefix + item.key()));
  std::size_t stored = 0;
  for (const auto& [n, t] : fixture().tensors) stored += n.rfind(prefix, 0) == 0;
  EXPECT_EQ(stored, model->named_parameters().size()) << "the official model has other parameters";
  return model;
}

at::Generator generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

}  // namespace

TEST(MaeFinetune, ModelsMatchModelsVit) {
  for (const bool global_pool : {true, false}) {
    SCOPED_TRACE(global_pool ? "global pool" : "class token");
    auto model = fixture_model(global_pool);
    model->eval();
    at::NoGradGuard no_grad;
    const auto logits = model->forward(tensor("images"));
    const auto want = tensor(global_pool ? "gp/logits" : "cls/logits");
    ASSERT_EQ(logits.sizes(), want.sizes());
    EXPECT_LT((logits - want).abs().max().item<double>(), 1e-5);
  }
}

TEST(MaeFinetune, LayerDecayGroupsAreParamGroupsLrd) {
  auto model = fixture_model(true);
  const auto official = nlohmann::json::parse(fixture().metadata.at("param_groups_lrd"));
  const sv::ParamGroups groups = sv::layer_decay_groups(*model, 2, 1e-3, 0.05, 0.75);
  ASSERT_EQ(groups.groups.size(), groups.lr_scales.size());
  std::map<const void*, std::string> names;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) names[item.value().data_ptr()] = item.key();
  std::size_t seen = 0;
  for (std::size_t g = 0; g < groups.groups.size(); ++g) {
    const double wd = static_cast<const torch::optim::AdamWOptions&>(groups.groups[g].options()).weight_decay();
    for (const auto& p : groups.groups[g].params()) {
      const std::string& name = names.at(p.data_ptr());
      ASSERT_TRUE(official.contains(name)) << name;
      EXPECT_DOUBLE_EQ(groups.lr_scales[g], official[name][0].get<double>()) << name;
      EXPECT_DOUBLE_EQ(wd, official[name][1].get<double>()) << name;
      ++seen;
    }
  }
  EXPECT_EQ(seen, official.size());
  EXPECT_EQ(sv::vit_layer_id("blocks.11.mlp.fc1.weight", 12), 12);
  EXPECT_EQ(sv::vit_layer_id("fc_norm.bias", 12), 13);
}

TEST(MaeFinetune, DropPathDropsWholeBranchesPerSample) {
  sv::ViTConfig c = small_config(true);
  c.depth = 5;
  c.drop_path_rate = 0.4;
  at::Generator gen = generator(3);
  const at::Tensor scales = sv::drop_path_scales(c, 4000, &gen);
  ASSERT_EQ(scales.sizes(), (std::vector<int64_t>{5, 2, 4000}));
  for (int64_t i = 0; i < 5; ++i) {
    const double p = 0.4 * static_cast<double>(i) / 4;  // timm's linspace(0, rate, depth)
    const at::Tensor kept = scales[i].ne(0);
    if (i == 0) {
      EXPECT_TRUE(kept.all().item<bool>());
    }
    EXPECT_NEAR(1.0 - kept.to(at::kDouble).mean().item<double>(), p, 0.02) << "block " << i;
    EXPECT_NEAR(scales[i].masked_select(kept).mean().item<double>(), 1.0 / (1.0 - p), 1e-6) << "block " << i;
  }

  // A sample whose branches are all dropped leaves the blocks as it entered them: the final norm of
  // the embedded patches plus positions; the other samples are untouched. In float64: in float32 the
  // CPU GEMMs' summation order follows the threads they get, which vary with the machine's load, and
  // moved the untouched sample by 1e-5 in one run.
  c.depth = 2;
  sv::VisionTransformer model(c);
  model->train();
  model->to(at::kDouble);
  const at::Tensor images = at::randn({2, 3, 32, 32}, generator(4)).to(at::kDouble);
  at::Tensor drop = at::ones({2, 2, 2}, at::kDouble);
  drop.select(2, 0).zero_();
  model->set_drop_path(drop);
  const at::Tensor dropped = model->forward_features(images);
  const at::Tensor full = model->forward_features(images);  // the scales held for one forward only
  auto params = model->named_parameters();
  const at::Tensor embedded =
      at::cat({params["cls_token"], at::conv2d(images.narrow(0, 0, 1), params["patch_embed.proj.weight"],
                                                params["patch_embed.proj.bias"], 4)
                                        .flatten(2)
                                        .transpose(1, 2)},
              1) +
      params["pos_embed"];
  EXPECT_LT((dropped[0] - embedded[0]).abs().max().item<double>(), 1e-5);
  EXPECT_LT((dropped[1] - full[1]).abs().max().item<double>(), 1e-6);
  EXPECT_GT((full[0] - embedded[0]).abs().max().item<double>(), 1e-2);
}

TEST(Mixup, CutmixPastesTheReversedBatchAndWeighsByArea) {
  const at::Tensor images = at::arange(4 * 2 * 8 * 8, at::kFloat).view({4, 2, 8, 8});
  const at::Tensor labels = at::tensor({0, 1, 2, 3}, at::kLong);
  sv::MixDraw draw;
  draw.cutmix = true;
  draw.y0 = 2, draw.y1 = 6, draw.x0 = 1, draw.x1 = 4;
  draw.lam = 1.0 - 12.0 / 64.0;
  const auto [mixed, targets] = sv::apply_mix(images, labels, 5, draw, 0.1);
  for (int64_t i = 0; i < 4; ++i) {
    const at::Tensor box = mixed[i].narrow(1, 2, 4).narrow(2, 1, 3);
    EXPECT_TRUE(box.equal(images[3 - i].narrow(1, 2, 4).narrow(2, 1, 3))) << i;
    at::Tensor outside = mixed[i].clone();
    outside.narrow(1, 2, 4).narrow(2, 1, 3).copy_(images[i].narrow(1, 2, 4).narrow(2, 1, 3));
    EXPECT_TRUE(outside.equal(images[i])) << i;
  }
  // Smoothing 0.1 over 5 classes: 0.92 on the class, 0.02 elsewhere, mixed by area.
  const double lam = draw.lam;
  EXPECT_NEAR(targets[0][0].item<double>(), lam * 0.92 + (1 - lam) * 0.02, 1e-6);
  EXPECT_NEAR(targets[0][3].item<double>(), lam * 0.02 + (1 - lam) * 0.92, 1e-6);
  EXPECT_NEAR(targets[0][1].item<double>(), 0.02, 1e-6);
  EXPECT_NEAR(targets.sum(1).sub(1).abs().max().item<double>(), 0.0, 1e-6);
}

TEST(Mixup, MixupBlendsAndDrawsFollowTimm) {
  const at::Tensor images = at::randn({6, 3, 4, 4}, generator(5));
  const at::Tensor labels = at::tensor({0, 1, 2, 0, 1, 2}, at::kLong);
  sv::MixDraw draw;
  draw.lam = 0.3;
  const auto [mixed, targets] = sv::apply_mix(images, labels, 3, draw, 0.0);
  EXPECT_TRUE(mixed.allclose(images * 0.3 + images.flip(0) * 0.7));
  EXPECT_NEAR(targets[1][1].item<double>(), 1.0, 1e-6);  // sample 1 pairs with sample 4, also of class 1
  EXPECT_NEAR(targets[0][0].item<double>(), 0.3, 1e-6);
  EXPECT_NEAR(targets[0][2].item<double>(), 0.7, 1e-6);  // sample 0 pairs with sample 5 (class 2)
  EXPECT_THROW(sv::apply_mix(images.narrow(0, 0, 5), labels.narrow(0, 0, 5), 3, draw, 0.0), sparsescope::Error);

  // Draws: cutmix half of the time; Beta(0.8, 0.8) for mixup's lam (mean 1/2, variance 1/10.4);
  // cutmix's lam is the area its box leaves.
  sv::MixupOptions options;
  at::Generator gen = generator(6);
  int cutmix = 0, mixup = 0;
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < 4000; ++i) {
    const sv::MixDraw d = sv::draw_mix(options, 32, 32, gen);
    if (d.cutmix) {
      ++cutmix;
      EXPECT_NEAR(d.lam, 1.0 - static_cast<double>((d.y1 - d.y0) * (d.x1 - d.x0)) / 1024.0, 1e-12);
      EXPECT_TRUE(d.y0 >= 0 && d.y0 <= d.y1 && d.y1 <= 32 && d.x0 >= 0 && d.x0 <= d.x1 && d.x1 <= 32);
    } else {
      ++mixup;
      sum += d.lam;
      sum_sq += d.lam * d.lam;
    }
  }
  EXPECT_NEAR(cutmix / 4000.0, 0.5, 0.03);
  const double mean = sum / mixup, variance = sum_sq / mixup - mean * mean;
  EXPECT_NEAR(mean, 0.5, 0.02);
  EXPECT_NEAR(variance, 0.25 / 2.6, 0.01);
  sv::MixupOptions off;
  off.mixup_alpha = off.cutmix_alpha = 0;
  EXPECT_EQ(sv::draw_mix(off, 32, 32, gen).lam, 1.0);

  const at::Tensor logits = at::randn({6, 3}, generator(7));
  const at::Tensor soft = at::softmax(at::randn({6, 3}, generator(8)), 1);
  EXPECT_NEAR(sv::soft_target_cross_entropy(logits, soft).item<double>(),
              (-soft * at::log_softmax(logits, 1)).sum(1).mean().item<double>(), 1e-6);
}

// `sparsescope train --task mae-finetune` as the library runs it, on a one-epoch MAE encoder: every
// recipe part on (mixup, cutmix, erasing, drop path, layer decay), an interrupted and resumed run
// equal to the uninterrupted one, and the result a ViT classifier that loads from its model card.
class MaeFinetuneRun : public sparsescope::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    sv::TrainRequest pre;
    pre.dataset = std::string(SPARSESCOPE_FIXTURES_DIR) + "/datasets/folder";
    pre.recipe.epochs = 1;
    pre.recipe.batch = 4;
    pre.recipe.warmup_epochs = 0;
    pre.recipe.out = (dir_ / "pretrain").string();
    pre.options = R"({"knn_k": 0})";
    pretrained_ = sv::train_task("mae").run(pre, {}).model_path;
  }
  sv::TrainRequest request(const std::string& out, const std::string& options = "{}") const {
    sv::TrainRequest r;
    r.dataset = std::string(SPARSESCOPE_FIXTURES_DIR) + "/datasets/folder";
    r.recipe.epochs = 2;
    r.recipe.batch = 4;
    r.recipe.lr = 1e-3;
    r.recipe.warmup_epochs = 1;
    r.recipe.seed = 5;
    r.recipe.out = (dir_ / out).string();
    auto o = nlohmann::json::parse(options);
    o["pretrained"] = pretrained_;
    r.options = o.dump();
    return r;
  }
  std::string pretrained_;
};

TEST_F(MaeFinetuneRun, TrainsResumesExactlyAndGivesAClassifier) {
  const sv::TrainTaskEntry& task = sv::train_task("mae-finetune");
  const sv::TrainResult whole = task.run(request("whole"), {});
  ASSERT_TRUE(whole.finished);
  EXPECT_EQ(whole.model_name, "mae_vit_tiny_patch4_32_finetuned");
  EXPECT_EQ(whole.epochs.back().eval.at("images"), 4);

  sv::TrainRequest part = request("part");
  part.recipe.stop_after = 1;
  EXPECT_FALSE(task.run(part, {}).finished);
  part.recipe.stop_after = 0;
  part.recipe.resume = true;
  EXPECT_TRUE(task.run(part, {}).finished);
  const auto a = sv::load_safetensors(whole.model_path), b = sv::load_safetensors((dir_ / "part" / "model.safetensors").string());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_TRUE(at::equal(a.tensors[i].second, b.tensors[i].second)) << a.tensors[i].first;
  }

  // The encoder came from the pretraining run: its first block moved only by fine-tuning's small,
  // layer-decayed steps; the classifier loads with global pooling from its card.
  const sv::LoadedViT loaded = sv::load_vit(whole.model_path);
  EXPECT_TRUE(loaded.model->config().global_pool);
  EXPECT_EQ(loaded.model->config().num_classes, 2);
  EXPECT_EQ(loaded.classes, (std::vector<std::string>{"circle", "square"}));
  const auto pre = sv::load_safetensors(pretrained_);
  for (const auto& [name, t] : pre.tensors) {
    if (name != "blocks.0.attn.qkv.weight") continue;
    const at::Tensor tuned = loaded.model->named_parameters()[name];
    EXPECT_LT((tuned - t).abs().max().item<double>(), 0.05);
    EXPECT_GT((tuned - t).abs().max().item<double>(), 0.0);
  }
}

TEST_F(MaeFinetuneRun, LinearProbeTrainsOnlyTheHeadWithLars) {
  const sv::TrainTaskEntry& task = sv::train_task("mae-linprobe");
  auto probe = [&](const std::string& out) {
    sv::TrainRequest r = request(out);
    r.recipe.weight_decay = 0;
    r.recipe.lr = 0.1;
    return r;
  };
  const sv::TrainResult whole = task.run(probe("whole"), {});
  ASSERT_TRUE(whole.finished);
  EXPECT_EQ(whole.model_name, "mae_vit_tiny_patch4_32_linprobe");
  sv::TrainRequest part = probe("part");
  part.recipe.stop_after = 1;
  task.run(part, {});
  part.recipe.stop_after = 0;
  part.recipe.resume = true;
  task.run(part, {});  // the LARS momentum comes back from the checkpoint
  const auto a = sv::load_safetensors(whole.model_path), b = sv::load_safetensors((dir_ / "part" / "model.safetensors").string());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_TRUE(at::equal(a.tensors[i].second, b.tensors[i].second)) << a.tensors[i].first;
  }

  // The encoder is the pretrained one, bit for bit; the BatchNorm statistics moved, the head trained.
  const auto pre = sv::load_safetensors(pretrained_);
  std::map<std::string, at::Tensor> encoder(pre.tensors.begin(), pre.tensors.end());
  std::size_t frozen = 0;
  for (const auto& [name, t] : a.tensors) {
    if (name.rfind("head.", 0) == 0) continue;
    ASSERT_TRUE(encoder.count(name)) << name;
    EXPECT_TRUE(at::equal(t, encoder.at(name))) << name;
    ++frozen;
  }
  EXPECT_GT(frozen, 20u);
  const sv::LoadedViT loaded = sv::load_vit(whole.model_path);
  EXPECT_TRUE(loaded.model->config().head_norm);
  EXPECT_FALSE(loaded.model->config().global_pool);
  auto buffers = loaded.model->named_buffers();
  EXPECT_GT(buffers["head.0.running_var"].sub(1).abs().max().item<double>(), 0.0);
  EXPECT_EQ(buffers["head.0.num_batches_tracked"].item<int64_t>(), 4);  // 2 epochs of 2 steps
}

TEST_F(MaeFinetuneRun, BadOptionsAreClearErrors) {
  const sv::TrainTaskEntry& task = sv::train_task("mae-finetune");
  auto message = [&](sv::TrainRequest r) {
    try {
      task.run(r, {});
    } catch (const sparsescope::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  sv::TrainRequest r = request("bad");
  r.options = "{}";
  EXPECT_NE(message(r).find("--pretrained"), std::string::npos);
  const sv::TrainResult classifier = task.run(request("classifier"), {});
  r = request("bad");
  r.options = nlohmann::json{{"pretrained", classifier.model_path}}.dump();
  EXPECT_NE(message(r).find("carries no sparsescope.mae model card"), std::string::npos) << message(r);
  r = request("bad");
  r.recipe.batch = 3;
  EXPECT_NE(message(r).find("must be even"), std::string::npos);
  r = request("bad", R"({"layer_decay": 0})");
  EXPECT_NE(message(r).find("--layer-decay"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "bad"));
}
