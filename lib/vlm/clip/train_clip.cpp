// Contrastive image-text pretraining as open_clip's training/main.py runs it, as a task of the
// training loop (train_loop.h): pairs from a tab-separated file (clip_data.h), RandomResizedCrop
// with scale (0.9, 1) and no flip (open_clip's train transform), the symmetric InfoNCE loss
// (ClipLoss), AdamW with betas (0.9, 0.98) and eps 1e-6, no decay for parameters of at most one
// dimension, biases, LayerNorms and logit_scale, warmup then cosine, logit_scale clamped to
// [0, ln 100] after every step. Evaluated after every epoch by retrieval on held-out pairs and
// zero-shot top-1 on a class-folder tree.
#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/augment.h"
#include "sparsescope/vision/seeded.h"
#include "sparsescope/vision/train_optim.h"
#include "sparsescope/vision/train_task.h"
#include "sparsescope/vision/vit_input.h"
#include "sparsescope/vlm/clip.h"
#include "sparsescope/vlm/clip_data.h"
#include "sparsescope/vlm/clip_eval.h"
#include "sparsescope/vlm/clip_vocab.h"

namespace sparsescope::vlm {

namespace {

using nlohmann::json;
namespace sv = vision;

constexpr const char* kClipTask = "clip";

// Each caption is an example: its image (augmented) and its token ids.
class PairBatches : public sv::BatchSource {
 public:
  PairBatches(const ImageTextPairs& pairs, const at::Tensor& ids, const sv::EvalTransform& transform, at::Device device)
      : source_(pairs.source), images_(pairs.images.to(device)), ids_(ids.to(device)),
        caption_image_(at::tensor(pairs.caption_image, at::kLong).to(device)), transform_(transform) {
    augment_.scale_min = 0.9;
    augment_.hflip = false;
  }
  int64_t size() const override { return ids_.size(0); }
  std::string source() const override { return source_; }
  sv::Batch batch(const at::Tensor& index, at::Generator* gen) const override {
    const at::Tensor items = index.to(ids_.device(), at::kLong, /*non_blocking=*/true);  // pinned by the loop
    at::Tensor pixels = images_.index_select(0, caption_image_.index_select(0, items)).to(at::kFloat).div_(255);
    if (gen) pixels = sv::augment_geometry(pixels, augment_, *gen);
    return {{{"images", sv::normalize_unit_pixels(pixels, transform_)}, {"ids", ids_.index_select(0, items)}},
            items.size(0)};
  }

 private:
  std::string source_;
  at::Tensor images_, ids_, caption_image_;
  sv::EvalTransform transform_;
  sv::AugmentOptions augment_;
};

class ClipTrainTask : public sv::TrainTask {
 public:
  ClipTrainTask(const ClipConfig& config, const ImageTextPairs& train, std::optional<ImageTextPairs> eval,
                std::optional<ZeroShotSet> zero_shot, const ClipTokenizer& tokenizer, const sv::TrainRecipe& recipe)
      : config_(config), tokenizer_(tokenizer), device_(sv::training_device(recipe.device)),
        data_(train, tokenizer.tokenize(train.captions, config.context_length), clip_eval_transform(config), device_),
        eval_(std::move(eval)), zero_shot_(std::move(zero_shot)) {
    sv::run_seeded(recipe.seed, [&] { model_ = CLIP(config); });
    auto summary = [](const ImageTextPairs& p) {
      return json{{"source", p.source}, {"images", p.image_files.size()}, {"captions", p.captions.size()}};
    };
    fingerprint_ = {{"model", json::parse(clip_config_json(config))},
                    {"train_data", summary(train)},
                    {"eval_data", eval_ ? summary(*eval_) : json(nullptr)},
                    {"zero_shot", zero_shot_ ? json{{"source", zero_shot_->data.source}, {"images", zero_shot_->data.size()}}
                                             : json(nullptr)}};
  }

  std::string fingerprint() const override { return fingerprint_.dump(); }
  torch::nn::Module& module() override { return *model_; }
  sv::ParamGroups param_groups(double lr, double weight_decay) override {
    // open_clip's exclude: p.ndim < 2 or "bn"/"ln"/"bias"/"logit_scale" in the name.
    auto decays = [](const std::string& name, const at::Tensor& p) {
      return !(p.dim() < 2 || name.find("bn") != std::string::npos || name.find("ln") != std::string::npos ||
               name.find("bias") != std::string::npos || name.find("logit_scale") != std::string::npos);
    };
    sv::ParamGroups groups = sv::weight_decay_groups(*model_, lr, weight_decay, decays, {0.9, 0.98});
    for (auto& group : groups.groups) static_cast<torch::optim::AdamWOptions&>(group.options()).eps(1e-6);
    return groups;
  }
  const sv::BatchSource& data() const override { return data_; }

  sv::StepResult step(const sv::Batch& batch) override {
    const at::Tensor image = model_->encode_image(batch.at("images"), true).to(at::kFloat);
    const at::Tensor text = model_->encode_text(batch.at("ids"), true).to(at::kFloat);
    const at::Tensor loss = clip_loss(image, text, model_->logit_scale());
    // In-batch image -> text top-1, the accuracy open_clip's logs show as the loss falls.
    const at::Tensor hits = (at::matmul(image, text.t()).argmax(1) ==
                             at::arange(image.size(0), image.options().dtype(at::kLong)))
                                .sum()
                                .to(at::kDouble);
    return {loss, {{"batch_top1", hits.detach()}}};
  }
  sv::Metrics train_metrics(const std::map<std::string, double>& sums, int64_t examples) const override {
    const double n = static_cast<double>(examples);
    return {{"batch_top1", 100.0 * sums.at("batch_top1") / n},
            {"logit_scale", model_->logit_scale().exp().item<double>()}};
  }
  void after_step() override {
    at::NoGradGuard no_grad;
    model_->logit_scale().clamp_(0, std::log(100.0));
  }

  sv::Metrics evaluate(const sv::TrainRecipe& recipe) override {
    sv::Metrics m;
    const bool was_training = model_->is_training();
    model_->eval();
    at::NoGradGuard no_grad;
    if (eval_) {
      m = retrieval_metric_map(clip_retrieval(model_, tokenizer_, *eval_, recipe.eval_batch));
    }
    if (zero_shot_) {
      m["zero_shot_top1"] = clip_zero_shot_top1(model_, tokenizer_, zero_shot_->data.images, zero_shot_->data.labels,
                                                zero_shot_->classnames, cifar10_templates(), recipe.eval_batch);
    }
    model_->train(was_training);
    return m;
  }
  std::string eval_source() const override {
    std::string s = eval_ ? eval_->source : "";
    if (zero_shot_) s += (s.empty() ? "" : ", ") + ("zero-shot " + zero_shot_->data.source);
    return s;
  }
  std::map<std::string, std::string> model_metadata() const override { return {{kClipCardKey, clip_config_json(config_)}}; }

 private:
  ClipConfig config_;
  const ClipTokenizer& tokenizer_;
  at::Device device_;
  CLIP model_{nullptr};
  PairBatches data_;
  std::optional<ImageTextPairs> eval_;
  std::optional<ZeroShotSet> zero_shot_;
  json fingerprint_;
};

void report(const ImageTextPairs& p, const std::string& what, const sv::TrainCallbacks& callbacks) {
  if (!callbacks.on_note) return;
  for (const auto& [file, reason] : p.failures) callbacks.on_note("skipped " + file + ": " + reason);
  callbacks.on_note(what + " " + std::to_string(p.captions.size()) + " captions of " + std::to_string(p.image_files.size()) +
                    " images from " + p.source);
}

sv::TrainResult run_clip(const sv::TrainRequest& request, const sv::TrainCallbacks& callbacks) {
  const sv::TrainTaskEntry& task = sv::train_task(kClipTask);
  ClipConfig config;
  try {
    config = clip_config(request.model.empty() ? "clip_tiny" : request.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--model: ", e.what());
  }
  if (!request.name.empty()) config.name = request.name;
  const std::string vocab = clip_vocab_path(sv::task_string(task, request.options, "vocab"));
  const ClipTokenizer tokenizer(vocab);
  const sv::EvalTransform geometry = clip_eval_transform(config);
  auto load = [&](const std::string& path, int64_t limit, const char* flag) {
    try {
      return load_image_text_pairs(path, geometry, limit);
    } catch (const Error& e) {
      SPARSESCOPE_FAIL(flag, ": ", e.what());
    }
  };
  SPARSESCOPE_CHECK(!request.dataset.empty(), "--dataset: give the image-text pairs (a tab-separated file with filepath and title columns)");
  const ImageTextPairs train = load(request.dataset, request.limit_train, "--dataset");
  report(train, "training " + config.name + " on", callbacks);
  std::optional<ImageTextPairs> eval;
  if (!request.eval_dataset.empty()) {
    eval = load(request.eval_dataset, request.limit_eval, "--eval-dataset");
    report(*eval, "retrieval on", callbacks);
  }
  std::optional<ZeroShotSet> zero_shot;
  const std::string zero_shot_dir = sv::task_string(task, request.options, "zero_shot");
  if (!zero_shot_dir.empty()) {
    try {
      zero_shot = load_zero_shot_set(zero_shot_dir, geometry);
    } catch (const Error& e) {
      SPARSESCOPE_FAIL("--zero-shot: ", e.what());
    }
    if (callbacks.on_note) {
      callbacks.on_note("zero-shot on " + std::to_string(zero_shot->data.size()) + " images of " +
                        std::to_string(zero_shot->classnames.size()) + " classes from " + zero_shot->data.source);
    }
  }
  auto failures = train.failures;
  if (eval) failures.insert(failures.end(), eval->failures.begin(), eval->failures.end());
  if (zero_shot) failures.insert(failures.end(), zero_shot->data.failures.begin(), zero_shot->data.failures.end());
  ClipTrainTask clip(config, train, std::move(eval), std::move(zero_shot), tokenizer, request.recipe);
  sv::TrainResult result = sv::train(clip, request.recipe, callbacks);
  result.model_name = config.name;
  result.failures = std::move(failures);
  return result;
}

}  // namespace

namespace detail {

void register_clip_task() {
  sv::register_train_task(
      {kClipTask,
       "contrastive image-text pretraining of CLIP as open_clip (--model a CLIP configuration, default clip_tiny): "
       "--dataset image-text pairs (tab-separated, columns filepath and title), --eval-dataset held-out pairs "
       "(retrieval R@1/5/10), --zero-shot a class-folder tree (top-1 with OpenAI's CIFAR-10 prompts). Recipe defaults "
       "for this task: --lr 5e-4 --weight-decay 0.2 --clip-grad 0 --warmup-epochs 1 --min-lr 0 --batch 256",
       {{"vocab", "\"\"", "bpe_simple_vocab_16e6.txt.gz (default: $SPARSESCOPE_CLIP_VOCAB or ../shared/data/clip)"},
        {"zero_shot", "\"\"", "a class-folder tree (e.g. cifar10/test) for zero-shot top-1 after every epoch"}},
       [](const sv::TrainRequest& r, const sv::TrainCallbacks& cb) { return run_clip(r, cb); },
       [](sv::TrainRecipe& recipe) {
         recipe.lr = 5e-4;
         recipe.weight_decay = 0.2;
         recipe.clip_grad = 0;
         recipe.warmup_epochs = 1;
         recipe.min_lr = 0;
         recipe.batch = 256;
       }});
}

}  // namespace detail

}  // namespace sparsescope::vlm
