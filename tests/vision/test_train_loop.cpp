// The training loop with a task that is not classification: regression of a linear map with an
// EMA copy of the weights updated after every step and kept in the checkpoint, as the teachers of
// MAE-LUT and DCLIP are; and on a GPU its steps replayed as a CUDA graph (--cuda-graph).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/train_loop.h"
#include "temp_dir.h"

namespace sv = sparsescope::vision;

namespace {

class Pairs : public sv::BatchSource {
 public:
  Pairs(at::Tensor x, at::Tensor y) : x_(std::move(x)), y_(std::move(y)) {}
  int64_t size() const override { return x_.size(0); }
  std::string source() const override { return "pairs"; }
  sv::Batch batch(const at::Tensor& index, at::Generator* gen) const override {
    const at::Tensor picked = index.to(x_.device());
    at::Tensor x = x_.index_select(0, picked);
    if (gen) x = x + 0.01 * at::randn(x.sizes(), *gen).to(x.device());  // augmentation from the epoch's generator
    return {{{"x", x}, {"y", y_.index_select(0, picked)}}, index.size(0)};
  }

 private:
  at::Tensor x_, y_;
};

class Regression : public sv::TrainTask {
 public:
  // Its data on `device`; `graph_safe`: whether it lets --cuda-graph capture its step.
  explicit Regression(uint64_t seed, at::Device device = at::kCPU, bool graph_safe = false)
      : graph_safe_(graph_safe),
        data_(make(seed, 0).to(device), make(seed, 1).to(device)),
        held_out_(make(seed + 1, 0).to(device), make(seed + 1, 1).to(device)) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    c10::NoGradGuard no_grad;
    model_->weight.normal_(0, 0.1, gen);
    model_->bias.zero_();
    ema_ = model_->weight.detach().clone().to(device);
  }

  std::string fingerprint() const override { return R"({"task": "regression"})"; }
  torch::nn::Module& module() override { return *model_; }
  const sv::BatchSource& data() const override { return data_; }
  bool graph_safe() const override { return graph_safe_; }
  sv::StepResult step(const sv::Batch& batch) override {
    const at::Tensor error = model_->forward(batch.at("x")) - batch.at("y");
    return {error.square().mean(), {{"squares", error.detach().square().sum()}}};
  }
  void after_step() override {
    c10::NoGradGuard no_grad;
    ema_.mul_(0.9).add_(model_->weight.detach(), 0.1);
    ++steps_;
  }
  sv::Metrics train_metrics(const std::map<std::string, double>& sums, int64_t examples) const override {
    return {{"mse", sums.at("squares") / static_cast<double>(examples * 2)}};
  }
  sv::Metrics evaluate(const sv::TrainRecipe&) override {
    c10::NoGradGuard no_grad;
    const at::Tensor x = at::arange(held_out_.size(), at::kLong);
    const sv::Batch b = held_out_.batch(x, nullptr);
    return {{"mse", (model_->forward(b.at("x")) - b.at("y")).square().mean().item<double>()}};
  }
  std::string eval_source() const override { return "held-out pairs"; }
  sv::NamedTensors state() const override { return {{"ema.weight", ema_}}; }
  void load_state(const sv::NamedTensors& state, const std::string& source) override {
    ASSERT_EQ(state.size(), 1u) << source;
    ASSERT_EQ(state[0].first, "ema.weight");
    ema_.copy_(state[0].second);
  }
  std::map<std::string, std::string> model_metadata() const override { return {{"sparsescope.model", "{}"}}; }

  at::Tensor ema_;
  int64_t steps_ = 0;

 private:
  // Inputs (part 0) and targets of a fixed linear map (part 1), 48 pairs.
  static at::Tensor make(uint64_t seed, int part) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const at::Tensor x = at::randn({48, 3}, gen);
    if (part == 0) return x;
    return at::matmul(x, at::tensor({1.0f, -2.0f, 0.5f, 0.25f, 3.0f, -1.0f}).view({3, 2})) + 0.5;
  }

  bool graph_safe_;
  torch::nn::Linear model_{3, 2};
  Pairs data_, held_out_;
};

class TrainLoop : public sparsescope::test::TempDirTest {
 protected:
  sv::TrainRecipe recipe(const std::string& sub) const {
    sv::TrainRecipe r;
    r.epochs = 4;
    r.batch = 8;
    r.lr = 0.3;
    r.min_lr = 1e-3;
    r.clip_grad = 0;
    r.warmup_epochs = 1;
    r.weight_decay = 0;
    r.seed = 5;
    r.out = (dir_ / sub).string();
    return r;
  }
};

TEST_F(TrainLoop, TrainsATaskThatIsNotClassificationAndLogsItsMetrics) {
  Regression task(1);
  const sv::TrainResult result = sv::train(task, recipe("run"));
  ASSERT_EQ(result.epochs.size(), 4u);
  EXPECT_TRUE(result.finished);
  EXPECT_EQ(task.steps_, 4 * 6);
  EXPECT_LT(result.epochs.back().train.at("mse"), 0.1 * result.epochs.front().train.at("mse"));
  EXPECT_LT(result.epochs.back().eval.at("mse"), result.epochs.front().eval.at("mse"));

  std::ifstream in(dir_ / "run" / "log.json");
  const auto log = nlohmann::json::parse(in);
  EXPECT_DOUBLE_EQ(log["epochs"][3]["train_mse"].get<double>(), result.epochs.back().train.at("mse"));
  EXPECT_DOUBLE_EQ(log["epochs"][3]["eval_mse"].get<double>(), result.epochs.back().eval.at("mse"));
  EXPECT_EQ(log["options"]["task"], "regression");  // the task's fingerprint, merged with the recipe's
  const auto checkpoint = sv::load_safetensors((dir_ / "run" / "checkpoint.safetensors").string());
  bool has_ema = false;
  for (const auto& [name, tensor] : checkpoint.tensors) has_ema = has_ema || name == "task/ema.weight";
  EXPECT_TRUE(has_ema);
}

TEST_F(TrainLoop, ResumeRestoresTheTaskStateExactly) {
  Regression whole(1);
  sv::train(whole, recipe("whole"));

  sv::TrainRecipe part = recipe("part");
  part.stop_after = 2;
  {
    Regression first(1);
    EXPECT_FALSE(sv::train(first, part).finished);
  }
  part.stop_after = 0;
  part.resume = true;
  Regression rest(1);
  const sv::TrainResult result = sv::train(rest, part);
  EXPECT_TRUE(result.finished);
  ASSERT_EQ(result.epochs.size(), 4u);
  EXPECT_TRUE(rest.ema_.equal(whole.ema_));  // restored from the checkpoint, then updated as before
  const auto a = sv::load_safetensors((dir_ / "whole" / "model.safetensors").string());
  const auto b = sv::load_safetensors((dir_ / "part" / "model.safetensors").string());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) EXPECT_TRUE(a.tensors[i].second.equal(b.tensors[i].second));
}

// A chunk of wall time ends the run after the first epoch that overruns it, keeping the plan: the
// resumed chunks end where one run would.
TEST_F(TrainLoop, ChunksOfSecondsKeepThePlanAndResumeExactly) {
  Regression whole(1);
  sv::train(whole, recipe("whole"));
  sv::TrainRecipe chunk = recipe("chunks");
  chunk.stop_after_seconds = 1e-9;
  int64_t chunks = 0;
  for (bool finished = false; !finished; ++chunks) {
    Regression part(1);
    const sv::TrainResult result = sv::train(part, chunk);
    EXPECT_EQ(result.planned_epochs, 4);
    EXPECT_EQ(static_cast<int64_t>(result.epochs.size()), chunks + 1);
    finished = result.finished;
    chunk.resume = true;
  }
  EXPECT_EQ(chunks, 4);
  const auto a = sv::load_safetensors((dir_ / "whole" / "model.safetensors").string());
  const auto b = sv::load_safetensors((dir_ / "chunks" / "model.safetensors").string());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) EXPECT_TRUE(a.tensors[i].second.equal(b.tensors[i].second));
}

TEST_F(TrainLoop, CudaGraphRefusesWhatItCannotCapture) {
  sv::TrainRecipe r = recipe("not_capturable");
  r.cuda_graph = true;
  Regression not_capturable(1);
  try {
    sv::train(not_capturable, r);
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be captured"), std::string::npos) << e.what();
  }
  r.out = (dir_ / "on_cpu").string();
  Regression capturable(1, at::kCPU, /*graph_safe=*/true);
  try {
    sv::train(capturable, r);
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a CUDA device"), std::string::npos) << e.what();
  }
}

// --cuda-graph computes what the eager steps compute: after 3 eager steps, the other 21 replay one
// captured graph, in float32 with gradient clipping and in float16 with the loss scale, and the run
// ends where an eager one ends (the learning rate reaches the graph as a float32 tensor, hence the
// tolerance); the checkpoint's optimizer step counts are the eager run's exactly.
TEST_F(TrainLoop, CudaGraphStepsMatchEagerSteps) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  for (const auto precision : {sv::Precision::FP32, sv::Precision::FP16}) {
    const std::string name = sv::to_string(precision);
    SCOPED_TRACE(name);
    sv::TrainRecipe r = recipe("eager_" + name);
    r.device = "cuda";
    r.precision = precision;
    r.clip_grad = 1.0;
    Regression eager(1, at::kCUDA, true);
    const sv::TrainResult a = sv::train(eager, r);
    r.out = (dir_ / ("graph_" + name)).string();
    r.cuda_graph = true;
    Regression graphed(1, at::kCUDA, true);
    const sv::TrainResult b = sv::train(graphed, r);
    EXPECT_EQ(graphed.steps_, eager.steps_);
    ASSERT_EQ(a.epochs.size(), b.epochs.size());
    for (size_t i = 0; i < a.epochs.size(); ++i) EXPECT_NEAR(a.epochs[i].train_loss, b.epochs[i].train_loss, 1e-5);
    EXPECT_TRUE(at::allclose(graphed.ema_, eager.ema_, 1e-5, 1e-6));
    const auto x = sv::load_safetensors((dir_ / ("eager_" + name) / "checkpoint.safetensors").string());
    const auto y = sv::load_safetensors((dir_ / ("graph_" + name) / "checkpoint.safetensors").string());
    ASSERT_EQ(x.tensors.size(), y.tensors.size());
    for (size_t i = 0; i < x.tensors.size(); ++i) {
      ASSERT_EQ(x.tensors[i].first, y.tensors[i].first);
      const at::Tensor &u = x.tensors[i].second, &v = y.tensors[i].second;
      if (at::isFloatingType(u.scalar_type())) {
        EXPECT_TRUE(at::allclose(u, v, 1e-5, 1e-6)) << x.tensors[i].first;
      } else {
        EXPECT_TRUE(u.equal(v)) << x.tensors[i].first;
      }
    }
  }
}

TEST(Batch, AMissingTensorIsAnErrorNamingTheOthers) {
  const sv::Batch batch{{{"images", at::zeros({1})}, {"labels", at::zeros({1})}}, 1};
  try {
    batch.at("text");
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_EQ(std::string(e.what()), "batch has no tensor 'text' (it holds: images, labels)");
  }
}

}  // namespace
