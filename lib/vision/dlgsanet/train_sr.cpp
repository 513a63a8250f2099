// Super-resolution training as a task of the training loop (train_loop.h), as BasicSR's SRModel
// trains DLGSANet (options/DLGSANet_SISR/train_*.yml): paired random crops (gt_size HR pixels and
// the LR patch beneath), horizontal and vertical flips and a transpose each with probability 1/2,
// L1 loss, Adam (AdamW without decay) with betas (0.9, 0.99), multi-step decay, and an EMA of the
// weights (0.999, parameters after every step) that is validated and shipped (params_ema).
#include <ATen/ATen.h>

#include <cmath>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/dlgsanet.h"
#include "sparsescope/vision/model_ema.h"
#include "sparsescope/vision/seeded.h"
#include "sparsescope/vision/sr_data.h"
#include "sparsescope/vision/sr_eval.h"
#include "sparsescope/vision/train_optim.h"
#include "sparsescope/vision/train_task.h"

namespace sparsescope::vision {

namespace {

using nlohmann::json;

constexpr const char* kSrTask = "sr";

// Paired random crops of the training pairs, each pair `repeat` times per epoch (BasicSR's
// dataset_enlarge_ratio): "lr" [B, 3, p, p] and "hr" [B, 3, s p, s p] in [0, 1].
class SrPatches : public BatchSource {
 public:
  SrPatches(const SrDataset& data, int64_t lr_patch, int64_t repeat, at::Device device)
      : source_(data.source), scale_(data.scale), patch_(lr_patch), repeat_(repeat) {
    for (const SrPair& pair : data.pairs) {
      hr_.push_back(pair.hr.to(device));
      lr_.push_back(pair.lr.to(device));
    }
  }
  int64_t size() const override { return static_cast<int64_t>(lr_.size()) * repeat_; }
  std::string source() const override { return source_; }

  // paired_random_crop, then augment(hflip, rotation): five uniforms per example from `gen`
  // (top, left, hflip, vflip, transpose); without `gen` the centre crop.
  Batch batch(const at::Tensor& index, at::Generator* gen) const override {
    const at::Tensor items = index.to(at::kCPU).contiguous();  // on the host already: no wait for the device
    const auto item = items.accessor<int64_t, 1>();
    const int64_t count = items.size(0);
    const at::Tensor u = gen ? at::rand({count, 5}, *gen, at::kDouble) : at::full({count, 5}, 0.5, at::kDouble);
    const auto draw = u.accessor<double, 2>();
    std::vector<at::Tensor> lrs, hrs;
    for (int64_t i = 0; i < count; ++i) {
      const auto k = static_cast<size_t>(item[i] % static_cast<int64_t>(lr_.size()));
      const at::Tensor& lr = lr_[k];
      const int64_t spare_h = lr.size(1) - patch_, spare_w = lr.size(2) - patch_;
      const int64_t top = std::min(spare_h, static_cast<int64_t>(draw[i][0] * static_cast<double>(spare_h + 1)));
      const int64_t left = std::min(spare_w, static_cast<int64_t>(draw[i][1] * static_cast<double>(spare_w + 1)));
      at::Tensor lp = lr.narrow(1, top, patch_).narrow(2, left, patch_);
      at::Tensor hp = hr_[k].narrow(1, top * scale_, patch_ * scale_).narrow(2, left * scale_, patch_ * scale_);
      if (gen) {
        if (draw[i][2] < 0.5) lp = lp.flip({2}), hp = hp.flip({2});
        if (draw[i][3] < 0.5) lp = lp.flip({1}), hp = hp.flip({1});
        if (draw[i][4] < 0.5) lp = lp.transpose(1, 2), hp = hp.transpose(1, 2);
      }
      lrs.push_back(lp);
      hrs.push_back(hp);
    }
    return {{{"lr", at::stack(lrs).to(at::kFloat).div_(255)}, {"hr", at::stack(hrs).to(at::kFloat).div_(255)}}, count};
  }

 private:
  std::string source_;
  int64_t scale_, patch_, repeat_;
  std::vector<at::Tensor> hr_, lr_;
};

// torch's default initialisation (the official model adds none to its convolutions) drawn from `seed`.
DLGSANet seeded_model(const DlgsaConfig& config, uint64_t seed) {
  DLGSANet model{nullptr};
  run_seeded(seed, [&] { model = DLGSANet(config); });
  return model;
}

class SrTrainTask : public TrainTask {
 public:
  SrTrainTask(const DlgsaConfig& config, const SrDataset& train, std::optional<SrDataset> eval,
              const TrainRecipe& recipe, int64_t lr_patch, int64_t repeat, double ema_decay)
      : config_(config), ema_decay_(ema_decay), model_(seeded_model(config, recipe.seed)), ema_(config),
        data_(train, lr_patch, repeat, training_device(recipe.device)), eval_(std::move(eval)) {
    copy_module_state(*ema_, *model_);  // BasicSR's model_ema(0) at the start
    ema_->to(training_device(recipe.device));
    ema_->eval();
    for (auto& p : ema_->parameters()) p.set_requires_grad(false);
    fingerprint_ = {{"model", json::parse(dlgsanet_config_json(config))},
                    {"lr_patch", lr_patch},
                    {"repeat", repeat},
                    {"ema_decay", ema_decay},
                    {"train_data", {{"source", train.source}, {"pairs", train.pairs.size()}}},
                    {"eval_data", eval_ ? json{{"source", eval_->source}, {"pairs", eval_->pairs.size()}} : json(nullptr)}};
  }

  std::string fingerprint() const override { return fingerprint_.dump(); }
  torch::nn::Module& module() override { return *model_; }
  torch::nn::Module& saved_module() override { return *ema_; }
  // Adam with weight_decay 0 and betas (0.9, 0.99): one group, nothing decayed.
  ParamGroups param_groups(double lr, double weight_decay) override {
    return weight_decay_groups(*model_, lr, weight_decay, [](const std::string&, const at::Tensor&) { return true; },
                               {0.9, 0.99});
  }
  const BatchSource& data() const override { return data_; }

  bool graph_safe() const override { return true; }
  StepResult step(const Batch& batch) override {
    const at::Tensor loss = at::l1_loss(model_->forward(batch.at("lr")).to(at::kFloat), batch.at("hr"));
    return {loss, {{"l1", loss.detach() * static_cast<double>(batch.size)}}};
  }
  Metrics train_metrics(const std::map<std::string, double>& sums, int64_t examples) const override {
    return {{"l1", sums.at("l1") / static_cast<double>(examples)}};
  }
  void after_step() override { ema_update(*ema_, *model_, ema_decay_); }

  // PSNR and SSIM (Y, crop = scale) of the EMA weights with TLC, as the official validation.
  Metrics evaluate(const TrainRecipe& recipe) override {
    if (!eval_) return {};
    const SrScores scores =
        evaluate_sr(*eval_, [this](const at::Tensor& lr) { return ema_->forward(lr); }, training_device(recipe.device));
    return {{"psnr", scores.psnr}, {"ssim", scores.ssim}, {"images", static_cast<double>(scores.images.size())}};
  }
  std::string eval_source() const override { return eval_ ? eval_->source : std::string(); }

  NamedTensors state() const override { return prefixed_state(*ema_, "ema/"); }
  void load_state(const NamedTensors& state, const std::string& source) override {
    load_prefixed_state(*ema_, state, "ema/", source);
  }

  std::map<std::string, std::string> model_metadata() const override {
    return {{kDlgsaCardKey, dlgsanet_config_json(config_)}};
  }

 private:
  DlgsaConfig config_;
  double ema_decay_;
  DLGSANet model_, ema_;
  SrPatches data_;
  std::optional<SrDataset> eval_;
  json fingerprint_;
};

void report(const SrDataset& data, const std::string& what, const TrainCallbacks& callbacks) {
  if (!callbacks.on_note) return;
  for (const auto& [file, reason] : data.failures) callbacks.on_note("skipped " + file + ": " + reason);
  callbacks.on_note(what + " " + std::to_string(data.pairs.size()) + " pairs of " + data.source +
                    (data.lr_files ? " (its LR files)" : " (LR made by MATLAB's bicubic)"));
}

TrainResult run_sr(const TrainRequest& request, const TrainCallbacks& callbacks) {
  const TrainTaskEntry& task = train_task(kSrTask);
  DlgsaConfig config;
  try {
    config = dlgsanet_config(request.model.empty() ? "dlgsanet_light_x4" : request.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--model: ", e.what());
  }
  if (!request.name.empty()) config.name = request.name;
  const double patch = task_number(task, request.options, "patch");
  const double repeat = task_number(task, request.options, "repeat");
  const double ema_decay = task_number(task, request.options, "ema_decay");
  SPARSESCOPE_CHECK(patch >= config.scale && std::fmod(patch, static_cast<double>(config.scale)) == 0,
                    "--patch ", patch, " must be a positive multiple of the model's scale ", config.scale);
  SPARSESCOPE_CHECK(repeat >= 1 && repeat == std::floor(repeat), "--repeat must be a whole number >= 1, got ", repeat);
  SPARSESCOPE_CHECK(ema_decay >= 0 && ema_decay < 1, "--ema-decay must be in [0, 1), got ", ema_decay);
  const auto lr_patch = static_cast<int64_t>(patch) / config.scale;

  SrDataset train;
  std::optional<SrDataset> eval;
  try {
    train = load_sr_dataset(request.dataset, config.scale, request.limit_train, lr_patch);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--dataset: ", e.what());
  }
  report(train, "training " + config.name + " on", callbacks);
  if (!request.eval_dataset.empty()) {
    try {
      eval = load_sr_dataset(request.eval_dataset, config.scale, request.limit_eval);
    } catch (const Error& e) {
      SPARSESCOPE_FAIL("--eval-dataset: ", e.what());
    }
    report(*eval, "evaluating on", callbacks);
  }
  auto failures = train.failures;
  if (eval) failures.insert(failures.end(), eval->failures.begin(), eval->failures.end());
  SrTrainTask sr(config, train, std::move(eval), request.recipe, lr_patch, static_cast<int64_t>(repeat), ema_decay);
  TrainResult result = vision::train(sr, request.recipe, callbacks);
  result.model_name = config.name;
  result.failures = std::move(failures);
  return result;
}

}  // namespace

namespace detail {

void register_sr_task() {
  register_train_task(
      {kSrTask,
       "super-resolution training of DLGSANet as its official options (--model a dlgsanet_* configuration, default "
       "dlgsanet_light_x4): --dataset a folder of HR images (LR made by MATLAB's bicubic) or of SelfExSR pairs, "
       "--eval-dataset a benchmark set (PSNR/SSIM on Y of the EMA weights). Recipe defaults for this task: --lr 5e-4 "
       "--batch 8 --weight-decay 0 --clip-grad 0 --warmup-epochs 0 --lr-milestones 0.5,0.8,0.9,0.95 --lr-gamma 0.5",
       {{"patch", "192", "HR patch side (gt_size); the LR patch is patch / scale"},
        {"repeat", "1", "passes over the training pairs per epoch (dataset_enlarge_ratio)"},
        {"ema_decay", "0.999", "decay of the weights' EMA, which is evaluated and saved (0: the raw weights)"}},
       [](const TrainRequest& r, const TrainCallbacks& cb) { return run_sr(r, cb); },
       [](TrainRecipe& recipe) {
         recipe.lr = 5e-4;
         recipe.batch = 8;
         recipe.weight_decay = 0;
         recipe.clip_grad = 0;
         recipe.warmup_epochs = 0;
         recipe.lr_milestones = {0.5, 0.8, 0.9, 0.95};
         recipe.lr_gamma = 0.5;
       }});
}

}  // namespace detail

}  // namespace sparsescope::vision
