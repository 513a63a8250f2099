// Sparsifiner: the predictor against a float64 reference written from the official code's
// formulas, the sparse attention against dense attention under the official -inf mask, the
// recorded connectivity, the FLOPs count, the model card, learning by reconstruction, and a tiny
// two-phase training run that trains only what each phase should.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adam.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_method.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/sparsifiner.h"
#include "sparsifiner/mask_predictor.h"
#include "temp_dir.h"

namespace sv = sparsescope::vision;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kHeads = 2, kHeadDim = 8, kTokens = 37;  // 6 x 6 patches + the class token

sv::SparsifinerOptions options(double keep = 0.25) {
  sv::SparsifinerOptions o;
  o.keep_rate = keep;
  o.basis_topk = 3;  // of 37 / 6 = 6 slots, so that the sparse basis differs from the dense one
  return o;
}

sv::ViTConfig tiny_config(double keep = 0.25) {
  sv::ViTConfig c;
  c.name = "vit_test_sparsifiner";
  c.img_size = 12;
  c.patch_size = 2;
  c.in_chans = 1;
  c.embed_dim = kHeads * kHeadDim;
  c.depth = 2;
  c.num_heads = kHeads;
  c.num_classes = 2;
  c.eval.img_size = 12;
  c.eval.crop_pct = 1.0;
  c.eval.mean = {0.5f, 0.5f, 0.5f};
  c.eval.std = {0.25f, 0.25f, 0.25f};
  return sv::with_sparsifiner(c, options(keep));
}

std::map<std::string, at::Tensor> params(torch::nn::Module& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& item : m.named_parameters(/*recurse=*/true)) out.emplace(item.key(), item.value());
  return out;
}

std::map<std::string, at::Tensor> in_double(std::map<std::string, at::Tensor> p) {
  for (auto& [name, t] : p) t = t.detach().to(at::kDouble);
  return p;
}

// The official MaskPredictor.forward in float64, written out step by step: the slot coefficients
// of the rows after the class token [B, H, N-1, S] ...
at::Tensor coef_reference(const std::map<std::string, at::Tensor>& params, const at::Tensor& q, const at::Tensor& k) {
  auto p = in_double(params);
  const auto qd = q.to(at::kDouble), kd = k.to(at::kDouble);
  const auto qr = at::matmul(qd, p["proj_c_q.weight"].t()) + p["proj_c_q.bias"];
  const auto kr = at::matmul(kd, p["proj_c_k.weight"].t()) + p["proj_c_k.bias"];
  const auto k_slots = at::matmul(kr.transpose(-2, -1), p["proj_n"]);                  // [B, H, c, S]
  auto s = at::matmul(qr, k_slots) * std::pow(static_cast<double>(kHeads), -0.5);    // [B, H, N, S]
  return at::softmax(s.narrow(2, 1, s.size(2) - 1), -1);
}

// ... and the approximate attention [B, H, N-1, N].
at::Tensor reference_approx(const std::map<std::string, at::Tensor>& params, const at::Tensor& q, const at::Tensor& k,
                            bool sparse, const sv::SparsifinerOptions& o) {
  auto coef = coef_reference(params, q, k);
  auto basis = in_double(params)["proj_back_n"].t();
  if (sparse) {
    basis = basis.abs() * basis.abs().gt(o.basis_threshold);
    const auto kth = std::get<0>(coef.topk(o.basis_topk, -1)).narrow(-1, o.basis_topk - 1, 1);
    coef = coef * coef.ge(kth);
  }
  return at::matmul(coef, basis);
}

// Dense attention with the official mask: -inf outside the kept keys, the class-token row dense.
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& keys) {
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2);
  auto keep = at::zeros({B, H, N - 1, N}, at::kBool).scatter(-1, keys, true);
  keep = at::cat({at::ones({B, H, 1, N}, at::kBool), keep}, 2);
  const auto qd = q.to(at::kDouble), kd = k.to(at::kDouble), vd = v.to(at::kDouble);
  auto logits = at::matmul(qd, kd.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  logits = logits.masked_fill(keep.logical_not(), -INFINITY);
  return at::matmul(at::softmax(logits, -1), vd);
}

at::Tensor random(std::vector<int64_t> shape, uint64_t seed) {
  at::manual_seed(seed);
  return at::randn(shape);
}

// 12 x 12 gray images: class 0 darker, class 1 brighter.
sv::ImageDataset noise_images(int64_t count) {
  at::manual_seed(3);
  const at::Tensor labels = at::arange(count, at::kLong).remainder(2);
  sv::ImageDataset data;
  data.images = (at::randint(0, 140, {count, 1, 12, 12}, at::kLong) + 116 * labels.view({count, 1, 1, 1})).to(at::kByte);
  data.labels = labels;
  data.classes = {"dark", "bright"};
  data.source = "noise";
  return data;
}

using SparsifinerDir = sparsescope::test::TempDirTest;

}  // namespace

TEST(Sparsifiner, PredictorHasTheOfficialParameters) {
  sv::VisionTransformer model(tiny_config());
  const auto p = params(*model);
  const std::string prefix = "blocks.1.attn.mask_predictor.";
  ASSERT_TRUE(p.count(prefix + "proj_c_q.weight"));
  EXPECT_EQ(p.at(prefix + "proj_c_q.weight").sizes(), (std::vector<int64_t>{kHeadDim / 2, kHeadDim}));
  EXPECT_EQ(p.at(prefix + "proj_c_k.bias").sizes(), (std::vector<int64_t>{kHeadDim / 2}));
  EXPECT_EQ(p.at(prefix + "proj_n").sizes(), (std::vector<int64_t>{kTokens, kTokens / 6}));
  EXPECT_EQ(p.at(prefix + "proj_back_n").sizes(), (std::vector<int64_t>{kTokens, kTokens / 6}));
  EXPECT_EQ(sv::sparsifiner_options(tiny_config())->kept_keys(kTokens), 10);  // ceil(0.25 * 37)
}

// The smallest gap, per row, between the k-th and the (k+1)-th largest value of x.
at::Tensor selection_margin(const at::Tensor& x, int64_t k) {
  const auto top = std::get<0>(x.topk(k + 1, -1));
  return top.narrow(-1, k - 1, 1) - top.narrow(-1, k, 1);
}

// The predictor's top-k choices are discontinuous: where two candidates tie to within float32's
// rounding, CPUs with different vector units may choose either. The official initialisation (std
// 0.02) makes every slot coefficient about 1/6, all such ties, so the test draws weights that spread
// them and compares the rows whose basis choice is decided by more than float32 error (nearly all).
TEST(Sparsifiner, ApproximationMatchesTheOfficialFormulas) {
  const auto o = options();
  sv::MaskPredictor predictor(kHeadDim, kHeads, kTokens, o);
  {
    c10::NoGradGuard no_grad;
    at::manual_seed(7);
    for (auto& p : predictor->parameters()) p.normal_(0, 0.5);
  }
  const auto q = random({3, kHeads, kTokens, kHeadDim}, 1), k = random({3, kHeads, kTokens, kHeadDim}, 2);
  const auto dense = reference_approx(params(*predictor), q, k, false, o);
  const auto sparse = reference_approx(params(*predictor), q, k, true, o);
  EXPECT_LT((predictor->approximate(q, k, false).to(at::kDouble) - dense).abs().max().item<double>(), 1e-5);

  // Rows whose basis top-3 is decided by more than 1e-5 (float32's error here is about 1e-7), or
  // where swapping the third and fourth slot would move the approximation by less than 1e-6.
  const auto coef = coef_reference(params(*predictor), q, k);
  const auto third = std::get<0>(coef.topk(o.basis_topk, -1)).narrow(-1, o.basis_topk - 1, 1);
  const double basis_max = params(*predictor).at("proj_back_n").abs().max().item<double>();
  const auto clear = selection_margin(coef, o.basis_topk).gt(1e-5).logical_or(third.mul(basis_max).lt(1e-6)).squeeze(-1);
  ASSERT_GT(clear.to(at::kDouble).mean().item<double>(), 0.9) << "the seeded weights leave too many near-ties";

  const auto got = predictor->approximate(q, k, true).to(at::kDouble);
  ASSERT_EQ(got.sizes(), sparse.sizes());
  EXPECT_LT((got - sparse).abs().amax(-1).masked_select(clear).max().item<double>(), 1e-5) << "sparse basis";

  const auto keys = predictor->kept_keys(q, k);  // [B, H, N-1, 10]
  ASSERT_EQ(keys.sizes(), (std::vector<int64_t>{3, kHeads, kTokens - 1, 10}));
  const auto tenth = std::get<0>(sparse.topk(10, -1)).narrow(-1, 9, 1);
  // Keys that tie (the approximation is 0 wherever the sparse basis is) may be kept in any order;
  // keys within float32's error of the tenth may swap places with it.
  const auto in_top = sparse.gather(-1, keys).ge(tenth - 1e-5).all(-1);
  EXPECT_TRUE(in_top.masked_select(clear).all().item<bool>()) << "a kept key is not among the top 10";
  EXPECT_EQ(std::get<0>(keys.sort(-1)).diff(1, -1).gt(0).all().item<bool>(), true) << "a key is kept twice";
}

TEST(Sparsifiner, SparseAttentionEqualsDenseUnderTheOfficialMask) {
  sv::MaskPredictor predictor(kHeadDim, kHeads, kTokens, options());
  predictor->eval();
  const auto q = random({2, kHeads, kTokens, kHeadDim}, 4), k = random({2, kHeads, kTokens, kHeadDim}, 5),
             v = random({2, kHeads, kTokens, kHeadDim}, 6);
  const auto got = predictor->attend(q, k, v, nullptr);
  const auto want = reference_attention(q, k, v, predictor->kept_keys(q, k));
  EXPECT_LT((got.to(at::kDouble) - want).abs().max().item<double>(), 1e-5);
  predictor->mode = sv::SparsifinerMode::Dense;
  const auto dense = sparsescope::attend(q, k, v, sparsescope::Dense{});
  EXPECT_TRUE(at::allclose(predictor->attend(q, k, v, nullptr), dense));
}

TEST(Sparsifiner, RecorderSeesTheKeptConnectionsWithADenseClassRow) {
  sv::VisionTransformer model(tiny_config());
  model->eval();
  sv::Recorder recorder;
  {
    c10::NoGradGuard no_grad;
    model->forward(random({1, 1, 12, 12}, 7), &recorder);
  }
  const auto traces = recorder.take();
  ASSERT_EQ(traces.size(), 1u);
  const auto& site = traces.front().sites.at(0);
  EXPECT_EQ(site.pattern, "topk");
  const auto keep = site.mask.to(at::kBool);  // [H, N, N]
  ASSERT_EQ(keep.size(-1), kTokens);
  EXPECT_TRUE(keep.select(1, 0).all().item<bool>()) << "the class-token row must stay dense";
  EXPECT_TRUE(keep.narrow(1, 1, kTokens - 1).sum(-1).eq(10).all().item<bool>());
  const auto density = site.stats.select(1, 1);  // recall, density, entropy per head
  EXPECT_NEAR(density[0].item<double>(), (kTokens + (kTokens - 1) * 10.0) / (kTokens * kTokens), 1e-6);
}

TEST(Sparsifiner, FlopsCountTheSparseAttentionAndThePredictor) {
  sv::VisionTransformer model(tiny_config());
  const double N = kTokens, d = kHeads * kHeadDim, H = kHeads, k = 10, c = kHeadDim / 2, S = 6, L = 2;
  const auto dense = sv::mhsa_flops(model, /*dense=*/true);
  EXPECT_DOUBLE_EQ(dense.projections, L * 4 * N * d * d);
  EXPECT_DOUBLE_EQ(dense.attention, L * 2 * N * N * d);
  EXPECT_DOUBLE_EQ(dense.predictor, 0);
  {
    c10::NoGradGuard no_grad;  // a basis with exactly two entries above the threshold per slot
    for (auto& [name, p] : params(*model)) {
      if (name.find("proj_back_n") == std::string::npos) continue;
      p.fill_(0.01);
      p.narrow(0, 0, 2).fill_(-0.5);
    }
  }
  const auto sparse = sv::mhsa_flops(model);
  EXPECT_DOUBLE_EQ(sparse.projections, dense.projections);
  EXPECT_DOUBLE_EQ(sparse.attention, L * 2 * d * (N + (N - 1) * k));
  const double predictor = H * (2 * N - 1) * kHeadDim * c + H * c * N * S + H * (N - 1) * c * S + H * (N - 1) * 3 * 2;
  EXPECT_DOUBLE_EQ(sparse.predictor, L * predictor);
}

TEST(Sparsifiner, ModelCardRebuildsThePredictors) {
  sv::SparsifinerOptions o = options(0.5);
  o.reduce_n = 4;
  const sv::ViTConfig c = sv::with_sparsifiner(tiny_config(), o);
  const auto card = sv::parse_model_card(sv::model_card_metadata({c, {"dark", "bright"}}), "test");
  ASSERT_TRUE(card && sv::sparsifiner_options(card->config));
  EXPECT_EQ(sv::sparsifiner_options(card->config)->keep_rate, 0.5);
  EXPECT_EQ(sv::sparsifiner_options(card->config)->reduce_n, 4);
  EXPECT_EQ(sv::sparsifiner_options(card->config)->basis_topk, 3);
  sv::ViTConfig plain = c;
  plain = sv::with_sparsifiner(plain, std::nullopt);
  EXPECT_FALSE(sv::sparsifiner_options(sv::parse_model_card(sv::model_card_metadata({plain, {}}), "test")->config));
}

TEST(Sparsifiner, MethodsSwitchAndRejectWhatTheModelLacks) {
  sv::ViTConfig plain = tiny_config();
  plain = sv::with_sparsifiner(plain, std::nullopt);
  sv::VisionTransformer dense(plain), model(tiny_config());
  EXPECT_EQ(sv::default_attention_method(model->config()), "sparsifiner");
  EXPECT_EQ(sv::default_attention_method(dense->config()), "dense");
  EXPECT_THROW(sv::use_attention_method(dense, "sparsifiner"), sparsescope::Error);
  EXPECT_THROW(sv::use_attention_method(model, "flash"), sparsescope::Error);
  model->eval();
  const auto x = random({2, 1, 12, 12}, 8);
  c10::NoGradGuard no_grad;
  const auto sparse_logits = model->forward(x);
  sv::use_attention_method(model, "dense");
  const auto dense_logits = model->forward(x);
  EXPECT_FALSE(at::allclose(sparse_logits, dense_logits)) << "the kept 10 of 37 keys should change the logits";
}

TEST(Sparsifiner, ReconstructionTeachesThePredictorWhereAttentionGoes) {
  // Attention with structure a low-rank predictor can learn: keys cluster around 6 directions and
  // each query looks at one cluster. Recall of the kept keys starts near the keep rate.
  at::manual_seed(11);
  const auto centres = at::randn({6, kHeadDim}) * 2;
  const auto k_assign = at::randint(0, 6, {kTokens}, at::kLong);
  const auto q_assign = at::randint(0, 6, {kTokens}, at::kLong);
  const auto k = (centres.index_select(0, k_assign) + 0.3 * at::randn({kTokens, kHeadDim})).expand({4, kHeads, -1, -1});
  const auto q = (centres.index_select(0, q_assign) + 0.3 * at::randn({kTokens, kHeadDim})).expand({4, kHeads, -1, -1});
  const auto v = at::randn({4, kHeads, kTokens, kHeadDim});
  const auto target = at::softmax(at::matmul(q, k.transpose(-2, -1)) / std::sqrt(8.0), -1).narrow(2, 1, kTokens - 1);
  sv::MaskPredictor predictor(kHeadDim, kHeads, kTokens, options());
  auto recall = [&] {
    c10::NoGradGuard no_grad;
    return target.gather(-1, predictor->kept_keys(q, k)).sum(-1).mean().item<double>();
  };
  const double before = recall();
  predictor->mode = sv::SparsifinerMode::Reconstruct;
  predictor->train();
  torch::optim::Adam adam(predictor->parameters(), torch::optim::AdamOptions(3e-2));
  for (int step = 0; step < 300; ++step) {
    predictor->attend(q, k, v, nullptr);
    adam.zero_grad();
    predictor->reconstruction_loss.backward();
    adam.step();
  }
  const double after = recall();
  EXPECT_LT(before, 0.5);
  EXPECT_GT(after, before + 0.2) << "recall " << before << " -> " << after;
}

TEST_F(SparsifinerDir, TwoPhasesTrainThePredictorsThenTheBackbone) {
  sv::ViTConfig plain = tiny_config();
  plain = sv::with_sparsifiner(plain, std::nullopt);
  sv::VisionTransformer teacher(plain);
  sv::NamedTensors weights;
  for (const auto& item : teacher->named_parameters(/*recurse=*/true)) weights.emplace_back(item.key(), item.value());
  const std::string teacher_path = (dir_ / "teacher.safetensors").string();
  sv::save_safetensors(teacher_path, weights, sv::model_card_metadata({plain, {"dark", "bright"}}));

  const sv::ImageDataset data = noise_images(32);
  sv::SparsifinerTrainOptions o;
  o.teacher = teacher_path;
  o.method = options();
  o.reconstruct_epochs = 2;
  o.finetune.epochs = 2;
  o.finetune.batch = 16;
  o.finetune.lr = 1e-3;
  o.finetune.warmup_epochs = 0;
  o.finetune.out = (dir_ / "run").string();
  const auto result = sv::train_sparsifiner(data, &data, o);
  ASSERT_TRUE(result.reconstruct.finished && result.finetune.finished);

  const auto read = [](const std::string& path) {
    std::map<std::string, at::Tensor> out;
    for (const auto& [name, t] : sv::load_safetensors(path).tensors) out.emplace(name, t.to(at::kFloat));
    return out;
  };
  const auto start = params(*teacher);
  const auto phase1 = read(result.reconstruct.model_path), phase2 = read(result.finetune.model_path);
  for (const auto& [name, t] : phase1) {
    const bool predictor = name.find(".mask_predictor.") != std::string::npos;
    if (predictor) {
      EXPECT_TRUE(at::equal(t, phase2.at(name))) << "phase 2 changed the predictor's " << name;
    } else {
      EXPECT_TRUE(at::equal(t, start.at(name))) << "phase 1 changed the backbone's " << name;
    }
  }
  EXPECT_FALSE(at::equal(phase2.at("blocks.0.attn.qkv.weight"), start.at("blocks.0.attn.qkv.weight")))
      << "phase 2 left the backbone as it was";
  const auto loaded = sv::load_vit(result.finetune.model_path);
  EXPECT_TRUE(sv::sparsifiner_options(loaded.model->config()));
  EXPECT_THROW(sv::train_sparsifiner(data, &data, o), sparsescope::Error) << "an existing run needs --resume";
}
