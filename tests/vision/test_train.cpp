// Training: the optimisation recipe (schedule, weight-decay groups, clipping), augmentation,
// evaluation against independently computed predictions, and whole tiny runs on synthetic data:
// the loss falls, checkpoints resume exactly, the model file rebuilds the model.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "sparsescope/kernels/error.h"
#include "train/adamw_step.h"
#include "train/lars.h"
#include "sparsescope/vision/augment.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/evaluate.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/model_ema.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/train.h"
#include "sparsescope/vision/train_optim.h"
#include "sparsescope/vision/vit_input.h"
#include "temp_dir.h"

namespace sv = sparsescope::vision;
namespace fs = std::filesystem;

namespace {

at::Generator generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

sv::ViTConfig tiny_config(int64_t classes) {
  sv::ViTConfig c;
  c.name = "vit_test_tiny";
  c.img_size = 8;
  c.patch_size = 4;
  c.in_chans = 1;
  c.embed_dim = 16;
  c.depth = 1;
  c.num_heads = 2;
  c.num_classes = classes;
  c.eval.img_size = 8;
  c.eval.crop_pct = 1.0;
  c.eval.mean = {0.5f, 0.5f, 0.5f};
  c.eval.std = {0.25f, 0.25f, 0.25f};
  return c;
}

// 8 x 8 gray noise images, class 0 darker (pixels in [0, 140)), class 1 brighter ([100, 256)):
// single pixels overlap, whole images do not. Flips, shifts and erasing keep the class.
sv::ImageDataset noise_images(int64_t count, uint64_t seed) {
  at::Generator gen = generator(seed);
  const at::Tensor labels = at::arange(count, at::kLong).remainder(2);
  const at::Tensor noise = at::randint(0, 140, {count, 1, 8, 8}, gen, at::kLong);
  sv::ImageDataset data;
  data.images = (noise + 116 * labels.view({count, 1, 1, 1})).to(at::kByte);  // [N, 1, 8, 8]
  data.labels = labels;
  data.classes = {"dark", "bright"};
  data.source = "noise";
  return data;
}

sv::TrainOptions tiny_options(const fs::path& out) {
  sv::TrainOptions o;
  o.epochs = 6;
  o.batch = 16;
  o.lr = 3e-3;
  o.min_lr = 1e-4;
  o.warmup_epochs = 1;
  o.weight_decay = 0.05;
  o.augment.pad = 1;
  o.augment.erase_prob = 0.25;
  o.seed = 7;
  o.out = out.string();
  return o;
}

using TrainDir = sparsescope::test::TempDirTest;

std::map<std::string, at::Tensor> tensors_of(const fs::path& path) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, tensor] : sv::load_safetensors(path.string()).tensors) out.emplace(name, tensor);
  return out;
}

}  // namespace

TEST(Schedule, WarmsUpLinearlyThenFollowsAHalfCosine) {
  const sv::LrSchedule s{1e-3, 1e-5, 1e-6, 10, 110, {}};
  EXPECT_DOUBLE_EQ(s.at(0), 1e-6);
  EXPECT_DOUBLE_EQ(s.at(5), 1e-6 + (1e-3 - 1e-6) * 0.5);
  EXPECT_DOUBLE_EQ(s.at(10), 1e-3);
  EXPECT_NEAR(s.at(60), (1e-3 + 1e-5) / 2, 1e-15);  // halfway through the cosine
  EXPECT_NEAR(s.at(35), 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + std::cos(M_PI / 4)), 1e-15);
  EXPECT_DOUBLE_EQ(s.at(110), 1e-5);
  EXPECT_DOUBLE_EQ(s.at(500), 1e-5);
  for (int64_t i = 10; i < 110; ++i) EXPECT_GT(s.at(i), s.at(i + 1)) << i;
  const sv::LrSchedule no_warmup{1e-3, 0.0, 0.0, 0, 4, {}};
  EXPECT_DOUBLE_EQ(no_warmup.at(0), 1e-3);
  EXPECT_NEAR(no_warmup.at(2), 5e-4, 1e-18);
}

// BasicSR's MultiStepLR: DLGSANet's milestones [250k, 400k, 450k, 475k] of 500k, gamma 0.5.
TEST(Schedule, MultiStepHalvesAtEachMilestone) {
  sv::LrSchedule s{5e-4, 0.0, 0.0, 0, 500000, {}};
  s.milestones = {0.5, 0.8, 0.9, 0.95};
  EXPECT_DOUBLE_EQ(s.at(0), 5e-4);
  EXPECT_DOUBLE_EQ(s.at(249999), 5e-4);
  EXPECT_DOUBLE_EQ(s.at(250000), 2.5e-4);
  EXPECT_DOUBLE_EQ(s.at(399999), 2.5e-4);
  EXPECT_DOUBLE_EQ(s.at(400000), 1.25e-4);
  EXPECT_DOUBLE_EQ(s.at(450000), 6.25e-5);
  EXPECT_DOUBLE_EQ(s.at(475000), 3.125e-5);
  EXPECT_DOUBLE_EQ(s.at(499999), 3.125e-5);
  s.warmup_steps = 10;  // a warmup comes first
  EXPECT_DOUBLE_EQ(s.at(5), 2.5e-4);
}

TEST(WeightDecay, FollowsTimmGroups) {
  sv::ViTConfig config = sv::vit_config("deit_tiny_distilled_patch16_224");
  config.depth = 1;
  sv::VisionTransformer model(config);
  std::set<std::string> decayed;
  for (const auto& item : model->named_parameters()) {
    if (sv::uses_weight_decay(item.key(), item.value())) decayed.insert(item.key());
  }
  EXPECT_EQ(decayed, (std::set<std::string>{"patch_embed.proj.weight", "blocks.0.attn.qkv.weight",
                                            "blocks.0.attn.proj.weight", "blocks.0.mlp.fc1.weight",
                                            "blocks.0.mlp.fc2.weight", "head.weight", "head_dist.weight"}));
  // By name alone: a 2-D tensor named like a bias or a token is not decayed.
  const at::Tensor matrix = at::zeros({2, 2});
  EXPECT_FALSE(sv::uses_weight_decay("pos_embed", matrix));
  EXPECT_FALSE(sv::uses_weight_decay("cls_token", matrix));
  EXPECT_FALSE(sv::uses_weight_decay("dist_token", matrix));
  EXPECT_FALSE(sv::uses_weight_decay("x.bias", matrix));
  EXPECT_FALSE(sv::uses_weight_decay("blocks.0.norm1.weight", at::zeros({2})));
  EXPECT_TRUE(sv::uses_weight_decay("blocks.0.attn.qkv.weight", matrix));

  const auto groups = sv::weight_decay_groups(*model, 1e-3, 0.05).groups;
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].params().size(), decayed.size());
  EXPECT_EQ(groups[0].params().size() + groups[1].params().size(), model->parameters().size());
  auto decay_of = [](const torch::optim::OptimizerParamGroup& g) {
    return static_cast<const torch::optim::AdamWOptions&>(g.options()).weight_decay();
  };
  EXPECT_EQ(decay_of(groups[0]), 0.05);
  EXPECT_EQ(decay_of(groups[1]), 0.0);
}

// LARS against util/lars.py written out in float64: weight decay and the trust ratio for the matrix,
// the plain gradient for the bias, momentum 0.9; a zero matrix keeps the ratio 1.
TEST(Lars, StepsAsMaeLinearProbe) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(11);
  at::Tensor w = at::randn({4, 3}, gen, at::kDouble).requires_grad_(), b = at::randn({4}, gen, at::kDouble).requires_grad_();
  at::Tensor zero = at::zeros({2, 2}, at::kDouble).requires_grad_();
  at::Tensor rw = w.detach().clone(), rb = b.detach().clone(), rz = zero.detach().clone();
  at::Tensor mw = at::zeros_like(rw), mb = at::zeros_like(rb), mz = at::zeros_like(rz);
  const double lr = 0.5, wd = 0.1, tc = 0.001;
  sv::detail::Lars lars({torch::optim::OptimizerParamGroup({w, b, zero})}, sv::detail::LarsOptions(lr).weight_decay(wd));
  for (int step = 0; step < 3; ++step) {
    const at::Tensor gw = at::randn({4, 3}, gen, at::kDouble), gb = at::randn({4}, gen, at::kDouble),
                     gz = at::randn({2, 2}, gen, at::kDouble);
    w.mutable_grad() = gw.clone();
    b.mutable_grad() = gb.clone();
    zero.mutable_grad() = gz.clone();
    lars.step();
    const at::Tensor dw = gw + wd * rw;
    mw = 0.9 * mw + dw * (tc * rw.norm().item<double>() / dw.norm().item<double>());
    rw = rw - lr * mw;
    mb = 0.9 * mb + gb;  // 1-D: no decay, no ratio
    rb = rb - lr * mb;
    const at::Tensor dz = gz + wd * rz;
    mz = 0.9 * mz + dz * (rz.norm().item<double>() > 0 ? tc * rz.norm().item<double>() / dz.norm().item<double>() : 1.0);
    rz = rz - lr * mz;
    EXPECT_LT((w.detach() - rw).abs().max().item<double>(), 1e-12) << step;
    EXPECT_LT((b.detach() - rb).abs().max().item<double>(), 1e-12) << step;
    EXPECT_LT((zero.detach() - rz).abs().max().item<double>(), 1e-12) << step;
  }
}

TEST(AdamWStep, FusedStepMatchesLibTorchAdamW) {
  // Two copies of a small model's parameters, one stepped by torch::optim::AdamW, one by the fused
  // kernel, with the same gradients and both weight-decay groups.
  sv::VisionTransformer a(tiny_config(3)), b(tiny_config(3));
  {
    c10::NoGradGuard no_grad;
    for (size_t i = 0; i < a->parameters().size(); ++i) b->parameters()[i].copy_(a->parameters()[i]);
  }
  torch::optim::AdamW reference(sv::weight_decay_groups(*a, 1e-2, 0.05).groups);
  torch::optim::AdamW fused(sv::weight_decay_groups(*b, 1e-2, 0.05).groups);
  at::Generator gen = generator(4);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < a->parameters().size(); ++i) {
      const at::Tensor g = at::randn(a->parameters()[i].sizes(), gen);
      a->parameters()[i].mutable_grad() = g.clone();
      b->parameters()[i].mutable_grad() = g.clone();
    }
    reference.step();
    sparsescope::vision::detail::adamw_step(fused);
  }
  const auto named = a->named_parameters();
  for (size_t i = 0; i < named.size(); ++i) {
    EXPECT_TRUE(at::allclose(named[i].value(), b->parameters()[i], 1e-5, 1e-6)) << named[i].key();
    const auto& sa = static_cast<torch::optim::AdamWParamState&>(*reference.state().at(named[i].value().unsafeGetTensorImpl()));
    const auto& sb = static_cast<torch::optim::AdamWParamState&>(*fused.state().at(b->parameters()[i].unsafeGetTensorImpl()));
    EXPECT_EQ(sb.step(), 3);
    EXPECT_TRUE(at::allclose(sa.exp_avg_sq(), sb.exp_avg_sq(), 1e-5, 1e-8)) << named[i].key();
  }
}

TEST(ClipGrad, ScalesTheGlobalNormDown) {
  at::Tensor a = at::zeros({3}).requires_grad_();
  at::Tensor b = at::zeros({1}).requires_grad_();
  a.mutable_grad() = at::tensor({3.0f, 4.0f, 0.0f});
  b.mutable_grad() = at::tensor({12.0f});
  const at::Tensor norm = sv::clip_grad_norm({a, b}, 20.0);
  EXPECT_FLOAT_EQ(norm.item<float>(), 13.0f);
  EXPECT_TRUE(a.grad().equal(at::tensor({3.0f, 4.0f, 0.0f})));  // below the limit: untouched
  sv::clip_grad_norm({a, b}, 6.5);
  EXPECT_TRUE(at::allclose(a.grad(), at::tensor({1.5f, 2.0f, 0.0f}), 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(b.grad(), at::tensor({6.0f}), 1e-6, 1e-6));
}

// ema_update: e * decay + (1 - decay) * m for floating-point parameters and buffers (timm's
// ModelEma), integer buffers copied.
TEST(ModelEma, AveragesFloatsAndCopiesCounts) {
  torch::nn::Linear ema(3, 2), model(3, 2);
  torch::nn::BatchNorm1d ema_norm(2), model_norm(2);
  ema->register_module("norm", ema_norm);
  model->register_module("norm", model_norm);
  {
    at::NoGradGuard no_grad;
    model->weight.uniform_(-1, 1);
    model->bias.fill_(3);
    model_norm->running_mean.fill_(2);
    model_norm->num_batches_tracked.fill_(7);
  }
  const at::Tensor weight = ema->weight.clone(), bias = ema->bias.clone(), mean = ema_norm->running_mean.clone();
  sparsescope::vision::ema_update(*ema, *model, 0.9);
  EXPECT_TRUE(at::allclose(ema->weight, weight * 0.9 + 0.1 * model->weight, 1e-6, 1e-7));
  EXPECT_TRUE(at::allclose(ema->bias, bias * 0.9 + 0.1 * 3, 1e-6, 1e-7));
  EXPECT_TRUE(at::allclose(ema_norm->running_mean, mean * 0.9 + 0.1 * 2, 1e-6, 1e-7));
  EXPECT_EQ(ema_norm->num_batches_tracked.item<int64_t>(), 7);
}

TEST(Augment, ShiftsAndFlipsMovePixelsExactly) {
  at::Generator data_gen = generator(1);
  const at::Tensor x = at::rand({32, 2, 8, 8}, data_gen);
  sv::AugmentOptions off;
  off.hflip = false;
  at::Generator gen = generator(2);
  EXPECT_TRUE(sv::augment_geometry(x, off, gen).equal(x));

  sv::AugmentOptions o;
  o.pad = 2;
  const at::Tensor y = sv::augment_geometry(x, o, gen);
  int moved = 0;
  for (int64_t b = 0; b < 32; ++b) {
    bool found = false;
    for (int flip = 0; flip < 2 && !found; ++flip) {
      for (int dy = -2; dy <= 2 && !found; ++dy) {
        for (int dx = -2; dx <= 2 && !found; ++dx) {
          at::Tensor expected = at::zeros({2, 8, 8});
          for (int64_t r = 0; r < 8; ++r) {
            for (int64_t c = 0; c < 8; ++c) {
              const int64_t sr = r + dy, sc = (flip ? 7 - c : c) + dx;
              if (sr >= 0 && sr < 8 && sc >= 0 && sc < 8) expected.select(1, r).select(1, c).copy_(x[b].select(1, sr).select(1, sc));
            }
          }
          found = y[b].equal(expected);
          if (found && (flip || dx || dy)) ++moved;
        }
      }
    }
    EXPECT_TRUE(found) << "image " << b << " is no shift/flip of its input";
  }
  EXPECT_GT(moved, 16);  // 49 of 50 draws move the image
}

TEST(Augment, RandomResizedCropIsSeeded) {
  at::Generator data_gen = generator(1);
  const at::Tensor x = at::rand({8, 3, 16, 16}, data_gen);
  sv::AugmentOptions o;
  o.scale_min = 0.3;
  at::Generator g1 = generator(5), g2 = generator(5), g3 = generator(6);
  const at::Tensor a = sv::augment_geometry(x, o, g1);
  EXPECT_EQ(a.sizes(), x.sizes());
  EXPECT_TRUE(a.equal(sv::augment_geometry(x, o, g2)));
  EXPECT_FALSE(a.equal(sv::augment_geometry(x, o, g3)));
  EXPECT_GE(a.min().item<float>(), 0.0f);
  EXPECT_LE(a.max().item<float>(), 1.0f);
  EXPECT_THROW(
      [&] {
        sv::AugmentOptions bad;
        bad.scale_min = 0.0;
        sv::augment_geometry(x, bad, g1);
      }(),
      sparsescope::Error);
}

TEST(Augment, RandomErasingBlanksOneBoxPerImage) {
  const at::Tensor x = at::ones({16, 3, 20, 20});
  at::Generator gen = generator(3);
  EXPECT_TRUE(sv::random_erase(x, 0.0, gen).equal(x));
  const at::Tensor y = sv::random_erase(x, 1.0, gen);
  for (int64_t b = 0; b < 16; ++b) {
    const at::Tensor zero = y[b].eq(0);  // [3, H, W]
    EXPECT_TRUE(zero[0].equal(zero[1]) && zero[0].equal(zero[2]));
    const at::Tensor rows = zero[0].any(1).nonzero(), cols = zero[0].any(0).nonzero();
    ASSERT_GT(rows.size(0), 0) << b;
    const int64_t h = rows.size(0), w = cols.size(0);
    EXPECT_EQ(zero[0].sum().item<int64_t>(), h * w) << "not one rectangle in image " << b;
    EXPECT_EQ(rows[h - 1].item<int64_t>() - rows[0].item<int64_t>() + 1, h);
    EXPECT_GE(h * w, 4);     // about 2% of 400, after rounding the sides
    EXPECT_LE(h * w, 160);   // about a third, after rounding
  }
}

TEST(Evaluate, CountsTopOneAndTopFiveOfKnownPredictions) {
  const sv::ViTConfig config = tiny_config(7);
  sv::VisionTransformer model(config);
  model->eval();
  at::Generator gen = generator(11);
  sv::ImageDataset data;
  data.images = at::randint(0, 256, {20, 1, 8, 8}, gen, at::kByte);
  data.source = "random";
  const at::Tensor logits = model->forward(sv::normalize_pixels(data.images, config.eval)).detach();
  const at::Tensor ranked = std::get<1>(logits.sort(1, /*descending=*/true));  // [20, 7]
  // Image i's label is its (i % 7)-th most likely class: ranks 0 are top-1 hits (i = 0, 7, 14),
  // ranks below 5 are top-5 hits (15 of 20).
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < 20; ++i) labels.push_back(ranked[i][i % 7].item<int64_t>());
  data.labels = at::tensor(labels, at::kLong);
  int64_t seen = 0;
  const sv::EvalResult r = sv::evaluate(model, data, {8, sv::Precision::FP32, [&](int64_t n) { seen += n; }});
  EXPECT_EQ(r.images, 20);
  EXPECT_EQ(seen, 20);
  EXPECT_DOUBLE_EQ(r.top1, 3.0 / 20.0);
  EXPECT_DOUBLE_EQ(r.top5, 15.0 / 20.0);
  EXPECT_NEAR(r.loss, at::cross_entropy_loss(logits, data.labels).item<double>(), 1e-5);
  EXPECT_GT(r.images_per_second(), 0);

  data.labels[3] = 7;
  EXPECT_THROW(sv::evaluate(model, data), sparsescope::Error);  // a label beyond the 7 classes
}

TEST(ModelCard, RoundTripsThroughMetadata) {
  sv::ModelCard card{tiny_config(2), {"horizontal", "vertical"}};
  card.config.mlp_ratio = 2.5;
  card.config.eval.interpolation = sv::Interpolation::Bilinear;
  const auto parsed = sv::parse_model_card(sv::model_card_metadata(card), "x.safetensors");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->classes, card.classes);
  EXPECT_EQ(parsed->config.name, "vit_test_tiny");
  EXPECT_EQ(parsed->config.in_chans, 1);
  EXPECT_EQ(parsed->config.mlp_ratio, 2.5);
  EXPECT_EQ(parsed->config.eval.interpolation, sv::Interpolation::Bilinear);
  EXPECT_EQ(parsed->config.eval.std, card.config.eval.std);
  EXPECT_FALSE(sv::parse_model_card({{"other", "1"}}, "x"));
  try {
    sv::parse_model_card({{sv::kModelCardKey, "{\"name\": 3}"}}, "x.safetensors");
    ADD_FAILURE();
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.safetensors"), std::string::npos) << e.what();
  }
  card.classes.push_back("diagonal");
  EXPECT_THROW(sv::parse_model_card(sv::model_card_metadata(card), "x"), sparsescope::Error);
}

TEST_F(TrainDir, TinyRunLearnsAndItsModelFileStandsAlone) {
  const auto train = noise_images(128, 1), eval = noise_images(64, 2);
  std::vector<int64_t> epochs_seen;
  sv::TrainCallbacks callbacks;
  int64_t steps = 0;
  callbacks.on_step = [&] { ++steps; };
  callbacks.on_epoch_end = [&](const sv::EpochRecord& r, int64_t) { epochs_seen.push_back(r.epoch); };
  const auto result = sv::train_classifier(tiny_config(2), train, &eval, tiny_options(dir_), callbacks);
  ASSERT_EQ(result.epochs.size(), 6u);
  EXPECT_TRUE(result.finished);
  EXPECT_EQ(steps, 6 * 8);
  EXPECT_EQ(epochs_seen, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_LT(result.epochs.back().train_loss, 0.7 * result.epochs.front().train_loss);
  ASSERT_TRUE(result.epochs.back().eval.count("top1"));
  EXPECT_GE(result.epochs.back().eval.at("top1"), 0.9);
  EXPECT_NEAR(result.epochs.back().lr, 1e-4 + 0.5 * (3e-3 - 1e-4) * (1 + std::cos(M_PI * 39.0 / 40.0)), 1e-12);

  // The model file alone rebuilds the model and reproduces the last evaluation.
  auto loaded = sv::load_vit(result.model_path);
  EXPECT_EQ(loaded.classes, train.classes);
  EXPECT_EQ(loaded.model->config().in_chans, 1);
  const auto again = sv::evaluate(loaded.model, eval);
  EXPECT_DOUBLE_EQ(again.top1, result.epochs.back().eval.at("top1"));

  std::ifstream in(dir_ / "log.json");
  const auto log = nlohmann::json::parse(in);
  EXPECT_EQ(log["epochs"].size(), 6u);
  EXPECT_TRUE(log["finished"].get<bool>());
  EXPECT_EQ(log["model"]["classes"], nlohmann::json(train.classes));

  // A second run into the same folder must not silently replace it.
  EXPECT_THROW(sv::train_classifier(tiny_config(2), train, &eval, tiny_options(dir_)), sparsescope::Error);
}

TEST_F(TrainDir, ResumedRunEqualsUninterruptedRun) {
  const auto train = noise_images(64, 3), eval = noise_images(16, 4);
  auto whole = tiny_options(dir_ / "whole");
  whole.epochs = 3;
  sv::train_classifier(tiny_config(2), train, &eval, whole);

  auto part = tiny_options(dir_ / "part");
  part.epochs = 3;
  part.stop_after = 1;
  const auto first = sv::train_classifier(tiny_config(2), train, &eval, part);
  EXPECT_FALSE(first.finished);
  EXPECT_EQ(first.epochs.size(), 1u);
  part.stop_after = 0;
  part.resume = true;
  std::string note;
  sv::TrainCallbacks callbacks;
  callbacks.on_note = [&](const std::string& line) { note += line; };
  const auto rest = sv::train_classifier(tiny_config(2), train, &eval, part, callbacks);
  EXPECT_TRUE(rest.finished);
  EXPECT_EQ(rest.epochs.size(), 3u);
  EXPECT_NE(note.find("resuming after epoch 1 of 3"), std::string::npos) << note;

  // Same weights and optimizer state, bit for bit, and the same per-epoch losses.
  const auto a = tensors_of(dir_ / "whole" / "checkpoint.safetensors");
  const auto b = tensors_of(dir_ / "part" / "checkpoint.safetensors");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(a.count("optimizer/blocks.0.attn.qkv.weight/exp_avg_sq"));
  EXPECT_EQ(a.at("optimizer/head.weight/step").item<int64_t>(), 3 * 4);
  for (const auto& [name, tensor] : a) EXPECT_TRUE(tensor.equal(b.at(name))) << name;
  std::ifstream wl(dir_ / "whole" / "log.json"), pl(dir_ / "part" / "log.json");
  const auto wlog = nlohmann::json::parse(wl), plog = nlohmann::json::parse(pl);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(wlog["epochs"][i]["train_loss"], plog["epochs"][i]["train_loss"]) << i;
    EXPECT_EQ(wlog["epochs"][i]["eval_top1"], plog["epochs"][i]["eval_top1"]) << i;
  }

  // Resuming with another recipe is refused, naming what differs.
  auto other = part;
  other.lr = 1e-2;
  try {
    sv::train_classifier(tiny_config(2), train, &eval, other);
    ADD_FAILURE();
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lr (checkpoint 0.003, now 0.01)"), std::string::npos) << e.what();
  }
}

TEST_F(TrainDir, MixedPrecisionOnCpuTrainsAndKeepsTheLossScale) {
  const auto train = noise_images(32, 5);
  for (const auto precision : {sv::Precision::BF16, sv::Precision::FP16}) {
    auto o = tiny_options(dir_ / sv::to_string(precision));
    o.epochs = 2;
    o.warmup_epochs = 0;
    o.precision = precision;
    o.save_dtype = at::kHalf;
    const auto result = sv::train_classifier(tiny_config(2), train, nullptr, o);
    EXPECT_TRUE(std::isfinite(result.epochs.back().train_loss)) << sv::to_string(precision);
    const auto saved = tensors_of(dir_ / sv::to_string(precision) / "checkpoint.safetensors");
    EXPECT_EQ(saved.count("grad_scaler/scale"), precision == sv::Precision::FP16 ? 1u : 0u);
    EXPECT_EQ(saved.at("head.weight").scalar_type(), at::kFloat);  // float32 master weights
    EXPECT_EQ(tensors_of(dir_ / sv::to_string(precision) / "model.safetensors").at("head.weight").scalar_type(),
              at::kHalf);
  }
}

TEST_F(TrainDir, TimeBudgetLowersTheEpochCount) {
  auto o = tiny_options(dir_);
  o.epochs = 1000;
  o.warmup_epochs = 2;
  o.time_budget = 1e-3;  // already spent by the first epoch: the run ends there
  std::string note;
  sv::TrainCallbacks callbacks;
  callbacks.on_note = [&](const std::string& line) { note += line; };
  const auto result = sv::train_classifier(tiny_config(2), noise_images(32, 6), nullptr, o, callbacks);
  EXPECT_EQ(result.planned_epochs, 1);
  EXPECT_EQ(result.epochs.size(), 1u);
  EXPECT_TRUE(result.finished);
  EXPECT_NE(note.find("spent by epoch 1"), std::string::npos) << note;
  EXPECT_NE(note.find("training 1 epoch instead of 1000"), std::string::npos) << note;
}

TEST_F(TrainDir, RejectsDataThatDoesNotFitTheModel) {
  const auto train = noise_images(16, 7);
  try {
    sv::train_classifier(tiny_config(3), train, nullptr, tiny_options(dir_));
    ADD_FAILURE();
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 classes"), std::string::npos) << e.what();
  }
  auto o = tiny_options(dir_);
  o.device = "tpu";
  EXPECT_THROW(sv::train_classifier(tiny_config(2), train, nullptr, o), sparsescope::Error);
}
