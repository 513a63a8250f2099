// The recorder against independent references: probabilities against softmax(QK^T) computed here in
// float64, timm's own attention maps, hand-computed recall and entropy, and mean pooling written
// out cell by cell.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "probs_reference.h"
#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/vit.h"
#include "sparsescope/vision/vit_trace.h"
#include "vit_fixture.h"

namespace sv = sparsescope::vision;
using sparsescope::testing::max_diff;
using sparsescope::testing::reference_probs;
using sparsescope::BlockSparse;
using sparsescope::Dense;
using sparsescope::TopK;

namespace {

// One attend() call recorded at site "s".
std::vector<sv::Trace> record(const at::Tensor& q, const at::Tensor& k, const sparsescope::Pattern& pattern,
                              sv::RecorderOptions options = {}) {
  sv::Recorder recorder(std::move(options));
  sparsescope::attend(q, k, k, pattern, recorder.site("s"));
  return recorder.take();
}

TEST(Recorder, DenseProbabilitiesAreSoftmaxOfScaledScores) {
  at::manual_seed(0);
  const auto q = at::randn({2, 3, 13, 8}), k = at::randn({2, 3, 11, 8});
  Dense causal;
  causal.causal = true;
  causal.scale = 0.7;
  for (const sparsescope::Pattern& pattern : {sparsescope::Pattern(Dense{}), sparsescope::Pattern(causal)}) {
    const double scale = std::get<Dense>(pattern).scale.value_or(1 / std::sqrt(8.0));
    const auto traces = record(q, k, pattern);
    ASSERT_EQ(traces.size(), 2u);
    const auto keep = sparsescope::materialize(pattern, 13, 11).expand({2, 3, 13, 11});
    const auto want = reference_probs(q, k, keep, scale);
    for (int64_t b = 0; b < 2; ++b) {
      const auto& s = traces[b].sites.at(0);
      EXPECT_EQ(s.name, "s");
      EXPECT_EQ(s.pattern, "dense");
      EXPECT_EQ(s.pool, 1);
      EXPECT_EQ(s.mask.size(0), 1) << "the mask is shared by every head";
      EXPECT_LE(max_diff(s.probs, want[b]), 1e-6);
      EXPECT_TRUE(at::equal(s.mask[0].to(at::kBool), keep[b][0]));
      EXPECT_EQ(s.row_queries.numel(), 0) << "full maps hold every row";
      // Entropy per head: the mean over queries of -sum p log p.
      const auto entropy = (-at::special_xlogy(want[b], want[b]).sum(-1)).mean(-1);
      EXPECT_LE(max_diff(s.stats.select(1, sv::kEntropy), entropy), 1e-5);
      const double density = keep[b][0].to(at::kDouble).mean().item<double>();
      EXPECT_NEAR(s.stats[0][sv::kDensity].item<double>(), density, 1e-6);
    }
    // Recall against full dense attention: 1 without a causal mask.
    if (!std::get<Dense>(pattern).causal) {
      EXPECT_LE(max_diff(traces[0].sites[0].stats.select(1, sv::kRecall), at::ones({3})), 1e-6);
    }
  }
}

TEST(Recorder, TopKRecallAndEntropyByHand) {
  // Scale 1, D 1: query 0 scores keys (0, 1, 2) as (0, 1, 2); query 1 scores them all 0.
  const auto q = at::tensor({1.0f, 0.0f}).view({1, 1, 2, 1});
  const auto k = at::tensor({0.0f, 1.0f, 2.0f}).view({1, 1, 3, 1});
  TopK topk;
  topk.index = at::tensor({2, 1, 0, -1}, at::kLong).view({1, 1, 2, 2});  // query 0: {2, 1}; query 1: {0}
  topk.scale = 1.0;
  const auto traces = record(q, k, topk);
  const auto& s = traces.at(0).sites.at(0);
  EXPECT_EQ(s.pattern, "topk");
  const double e = std::exp(1.0), e2 = std::exp(2.0);
  // Kept probabilities: query 0 over keys 1 and 2, query 1 all on key 0.
  const auto want = at::tensor({0.0, e / (e + e2), e2 / (e + e2), 1.0, 0.0, 0.0}, at::kDouble).view({1, 2, 3});
  EXPECT_LE(max_diff(s.probs, want), 1e-6);
  EXPECT_TRUE(at::equal(s.mask, at::tensor({0.f, 1.f, 1.f, 1.f, 0.f, 0.f}).view({1, 2, 3})));
  // Recall: dense mass of the kept keys, query 0: (e + e^2) / (1 + e + e^2); query 1: 1/3 (uniform).
  const double recall = ((e + e2) / (1 + e + e2) + 1.0 / 3) / 2;
  EXPECT_NEAR(s.stats[0][sv::kRecall].item<double>(), recall, 1e-6);
  EXPECT_NEAR(s.stats[0][sv::kDensity].item<double>(), 3.0 / 6, 1e-7);
  const double p1 = e / (e + e2), p2 = e2 / (e + e2);
  EXPECT_NEAR(s.stats[0][sv::kEntropy].item<double>(), (-(p1 * std::log(p1) + p2 * std::log(p2)) + 0.0) / 2, 1e-6);
}

TEST(Recorder, BlockSparseMaskAndRecallPerHead) {
  at::manual_seed(1);
  // 2 heads, 6 queries x 8 keys in blocks of 2 x 4: head 0 keeps key block 0 for every query block,
  // head 1 keeps both key blocks for the first query block and none for the others.
  const auto q = at::randn({1, 2, 6, 4}), k = at::randn({1, 2, 8, 4});
  BlockSparse bs;
  bs.block_q = 2;
  bs.block_k = 4;
  bs.kv_count = at::tensor({1, 1, 1, 2, 0, 0}, at::kInt).view({1, 2, 3});
  bs.kv_index = at::tensor({0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, at::kInt).view({1, 2, 3, 2});
  const auto traces = record(q, k, bs);
  const auto& s = traces.at(0).sites.at(0);
  auto keep = at::zeros({2, 6, 8}, at::kBool);
  keep[0].narrow(1, 0, 4).fill_(true);
  keep[1].narrow(0, 0, 2).fill_(true);
  EXPECT_TRUE(at::equal(s.mask.to(at::kBool), keep));
  EXPECT_LE(max_diff(s.probs, reference_probs(q[0], k[0], keep, 0.5)), 1e-6);
  const auto dense = reference_probs(q[0], k[0], at::ones_like(keep), 0.5);
  const auto recall = (dense * keep).sum(-1).mean(-1);  // [2]
  EXPECT_LE(max_diff(s.stats.select(1, sv::kRecall), recall), 1e-6);
  EXPECT_NEAR(s.stats[0][sv::kDensity].item<double>(), 0.5, 1e-7);
  EXPECT_NEAR(s.stats[1][sv::kDensity].item<double>(), 16.0 / 48, 1e-7);
  // Queries 2..5 of head 1 see nothing: probability 0 and entropy 0 there.
  EXPECT_EQ(s.probs[1].narrow(0, 2, 4).abs().sum().item<double>(), 0.0);
}

// Mean of x [n, m] over the cell (i, j) of pool x pool, written out.
double cell_mean(const at::Tensor& x, int64_t i, int64_t j, int64_t pool) {
  const int64_t r0 = i * pool, c0 = j * pool;
  const int64_t r1 = std::min(x.size(0), r0 + pool), c1 = std::min(x.size(1), c0 + pool);
  double sum = 0;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) sum += x[r][c].item<double>();
  return sum / static_cast<double>((r1 - r0) * (c1 - c0));
}

TEST(Recorder, BeyondTheBudgetMapsAreMeanPooledWithFullRowsForSelectedQueries) {
  at::manual_seed(2);
  const auto q = at::randn({1, 2, 13, 8}), k = at::randn({1, 2, 11, 8});
  TopK topk;
  topk.index = at::randint(-1, 11, {1, 2, 13, 4}, at::kLong);
  const auto full = record(q, k, topk).at(0).sites.at(0);
  ASSERT_EQ(full.pool, 1);

  sv::RecorderOptions options;
  options.budget = 20;           // 13 x 11 = 143 cells: pool 3 gives 5 x 4 = 20
  options.queries = {0, 7, 99};  // 99 is past N and left out
  options.chunk_cells = 40;      // forces steps of 3 rows of one head
  const auto pooled = record(q, k, topk, options).at(0).sites.at(0);
  ASSERT_EQ(pooled.pool, 3);
  ASSERT_EQ(pooled.probs.sizes(), at::IntArrayRef({2, 5, 4}));
  ASSERT_EQ(pooled.mask.sizes(), at::IntArrayRef({2, 5, 4}));
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        EXPECT_NEAR(pooled.probs[h][i][j].item<double>(), cell_mean(full.probs[h], i, j, 3), 1e-6);
        EXPECT_NEAR(pooled.mask[h][i][j].item<double>(), cell_mean(full.mask[h], i, j, 3), 1e-6);
      }
  EXPECT_TRUE(at::equal(pooled.row_queries, at::tensor({0, 7}, at::kLong)));
  EXPECT_LE(max_diff(pooled.rows.select(1, 0), full.probs.select(1, 0)), 1e-7);
  EXPECT_LE(max_diff(pooled.rows.select(1, 1), full.probs.select(1, 7)), 1e-7);
  // Statistics do not depend on pooling or on how the work was split.
  EXPECT_LE(max_diff(pooled.stats, full.stats), 1e-5);
}

TEST(Recorder, SelectedBatchItemsAndNoDenseComparison) {
  at::manual_seed(3);
  const auto q = at::randn({3, 2, 5, 4}), k = at::randn({3, 2, 5, 4});
  sv::RecorderOptions options;
  options.items = {2, 0};
  options.compare_dense = false;
  const auto traces = record(q, k, Dense{}, options);
  ASSERT_EQ(traces.size(), 2u);
  const auto all = reference_probs(q, k, at::ones({3, 2, 5, 5}, at::kBool), 0.5);
  EXPECT_LE(max_diff(traces[0].sites[0].probs, all[2]), 1e-6);
  EXPECT_LE(max_diff(traces[1].sites[0].probs, all[0]), 1e-6);
  EXPECT_TRUE(std::isnan(traces[0].sites[0].stats[0][sv::kRecall].item<float>()));
  EXPECT_FALSE(traces[0].info.producer.empty());

  options.items = {3};
  EXPECT_THROW(record(q, k, Dense{}, options), sparsescope::Error);
}

TEST(Recorder, AdditiveBiasShapesTheProbabilities) {
  at::manual_seed(4);
  const auto q = at::randn({1, 1, 4, 4}), k = at::randn({1, 1, 6, 4});
  Dense biased;
  biased.mask = at::randn({1, 1, 4, 6});
  biased.mask[0][0][1][3] = -std::numeric_limits<float>::infinity();
  const auto s = record(q, k, biased).at(0).sites.at(0);
  const auto scores =
      at::matmul(q[0].to(at::kDouble), k[0].to(at::kDouble).transpose(1, 2)) * 0.5 + biased.mask[0].to(at::kDouble);
  EXPECT_LE(max_diff(s.probs, at::softmax(scores, -1)), 1e-6);
  EXPECT_EQ(s.mask[0][1][3].item<float>(), 0.0f);
}

TEST(Recorder, RejectsMisuse) {
  sv::RecorderOptions bad;
  bad.budget = 0;
  EXPECT_THROW(sv::Recorder{bad}, sparsescope::Error);
  bad = {};
  bad.items = {1, 1};
  EXPECT_THROW(sv::Recorder{bad}, sparsescope::Error);
  // A site seen twice in one pass means take() was forgotten between passes.
  sv::Recorder recorder;
  const auto x = at::randn({1, 1, 3, 4});
  sparsescope::attend(x, x, x, Dense{}, recorder.site("s"));
  try {
    sparsescope::attend(x, x, x, Dense{}, recorder.site("s"));
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("take()"), std::string::npos) << e.what();
  }
  EXPECT_EQ(recorder.take().size(), 1u);
  EXPECT_TRUE(recorder.take().empty());
}

// A recorded ViT matches timm's attention maps (fixtures from scripts/fixtures/make_vit_fixtures.py).
void expect_vit_matches_timm(const at::Device& device) {
  const std::string dir = std::string(SPARSESCOPE_FIXTURES_DIR) + "/vit/";
  const auto expected = sv::load_safetensors(dir + "deit_distilled_cfg.expected.safetensors");
  std::map<std::string, at::Tensor> want(expected.tensors.begin(), expected.tensors.end());
  const auto c = sparsescope::testing::fixture_vit_config(nlohmann::json::parse(expected.metadata.at("config")));
  sv::VisionTransformer model(c);
  sv::load_vit_weights(model, dir + "deit_distilled_cfg.weights.safetensors");
  model->eval();
  model->to(device);
  sv::Recorder recorder;
  at::NoGradGuard no_grad;
  model->forward(want.at("input").to(device), &recorder);
  const auto traces = recorder.take();
  ASSERT_EQ(static_cast<int64_t>(traces.size()), want.at("input").size(0));
  for (size_t b = 0; b < traces.size(); ++b) {
    ASSERT_EQ(static_cast<int64_t>(traces[b].sites.size()), c.depth);
    for (const auto& s : traces[b].sites) {
      EXPECT_EQ(s.probs.device(), at::Device(at::kCPU));
      EXPECT_LE(max_diff(s.probs, want.at(s.name + "/probs")[b]), 1e-5) << s.name;
      EXPECT_LE(max_diff(s.stats.select(1, sv::kRecall), at::ones({c.num_heads})), 1e-5);
    }
  }
  const auto layout = sv::vit_token_layout(c);
  EXPECT_EQ(layout.prefix, 2);
  EXPECT_EQ(layout.grid, (std::vector<int64_t>{1, c.grid(), c.grid()}));
  EXPECT_EQ(layout.tokens(), c.tokens());
  EXPECT_EQ(traces[0].sites[0].queries, c.tokens());
}

TEST(Recorder, ViTSitesMatchTimmOnCpu) { expect_vit_matches_timm(at::kCPU); }

TEST(Recorder, ViTSitesMatchTimmOnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  expect_vit_matches_timm(at::kCUDA);
}

TEST(Recorder, HalfPrecisionOnCudaIsRecordedInFloat32) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  at::manual_seed(5);
  const auto q = at::randn({1, 2, 64, 64}), k = at::randn({1, 2, 80, 64});
  TopK topk;
  topk.index = at::randint(0, 80, {1, 2, 64, 8}, at::kLong);
  const auto cpu = record(q, k, topk).at(0).sites.at(0);
  topk.index = topk.index.cuda();
  const auto gpu = record(q.cuda().to(at::kHalf), k.cuda().to(at::kHalf), topk).at(0).sites.at(0);
  EXPECT_EQ(gpu.probs.device(), at::Device(at::kCPU));
  EXPECT_EQ(gpu.probs.scalar_type(), at::kFloat);
  EXPECT_LE(max_diff(gpu.probs, cpu.probs), 2e-2);
  EXPECT_TRUE(at::equal(gpu.mask, cpu.mask));
}

TEST(VitTrace, DenormalizeInvertsTheEvalTransform) {
  sv::Image image;
  image.width = 4;
  image.height = 3;
  for (int i = 0; i < 36; ++i) image.pixels.push_back(static_cast<std::uint8_t>(i * 7));
  sv::EvalTransform transform;
  const auto back = sv::denormalize_input(sv::normalize_image(image, transform.mean, transform.std), transform);
  EXPECT_TRUE(at::equal(back, sv::image_to_tensor(image)));
}

}  // namespace
