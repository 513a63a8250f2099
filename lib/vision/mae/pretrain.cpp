// MAE and MAE-LUT pretraining as tasks of the training loop (train_loop.h). MAE: main_pretrain.py's
// recipe on images without labels (RandomResizedCrop with scale (0.2, 1), horizontal flips,
// ImageNet's mean and std). LUT: main_lut.py's two views (lut_views.h), the EMA teacher with its
// cosine decay schedule (model_ema_sched.py) kept in the checkpoint, and engine_lut.py's loss
// w_mae * MAE + w_bc * LUT. Both: the masking noise drawn from the loop's generator so that a
// resumed run is exact, AdamW with betas (0.9, 0.95) and timm's add_weight_decay groups, the MAE
// loss on held-out images (fixed noise) as the evaluation.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>
#include <vector>

#include "lut_views.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/augment.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/knn.h"
#include "sparsescope/vision/mae.h"
#include "sparsescope/vision/model_ema.h"
#include "sparsescope/vision/train.h"
#include "sparsescope/vision/train_optim.h"
#include "sparsescope/vision/train_task.h"
#include "train/host_to_device.h"

namespace sparsescope::vision {

namespace {

using nlohmann::json;

constexpr const char* kMaeTask = "mae";
constexpr const char* kLutTask = "mae-lut";
constexpr float kMean[3] = {0.485f, 0.456f, 0.406f}, kStd[3] = {0.229f, 0.224f, 0.225f};

// Images on the training device, normalised after the augmentation, with the masking noise of
// every image drawn from the same generator: "images" (MAE) or LUT's "view1" and "view2".
class MaskedImages : public BatchSource {
 public:
  MaskedImages(const ImageDataset& data, const AugmentOptions& augment, int64_t patches, at::Device device,
               bool two_views = false)
      : images_(data.images.to(device)), source_(data.source), augment_(augment), patches_(patches),
        two_views_(two_views) {
    const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
    mean_ = at::tensor(at::ArrayRef<float>(kMean, 3)).to(options).view({1, 3, 1, 1});
    std_ = at::tensor(at::ArrayRef<float>(kStd, 3)).to(options).view({1, 3, 1, 1});
  }
  int64_t size() const override { return images_.size(0); }
  std::string source() const override { return source_; }

  Batch batch(const at::Tensor& index, at::Generator* gen) const override {
    const at::Tensor x = images_.index_select(0, detail::to_device_async(index, images_.device())).to(at::kFloat).div_(255);
    Batch b{{}, index.size(0)};
    if (gen && two_views_) {
      const auto [view1, view2] = detail::lut_views(x, *gen);
      b.tensors = {{"view1", normalized(view1)}, {"view2", normalized(view2)}};
    } else {
      b.tensors = {{"images", normalized(gen ? augment_geometry(x, augment_, *gen) : x)}};
    }
    if (gen) b.tensors["noise"] = detail::to_device_async(at::rand({index.size(0), patches_}, *gen), x.device());
    return b;
  }

 private:
  at::Tensor normalized(const at::Tensor& x) const { return (x - mean_) / std_; }

  at::Tensor images_, mean_, std_;
  std::string source_;
  AugmentOptions augment_;
  int64_t patches_;
  bool two_views_;
};

class MaePretrainTask : public TrainTask {
 public:
  MaePretrainTask(const MaeConfig& config, const ImageDataset& train, std::optional<ImageDataset> eval,
                  const TrainRecipe& recipe, double mask_ratio, double crop_scale_min, int64_t knn_k,
                  bool two_views = false)
      : config_(config), mask_ratio_(mask_ratio), knn_k_(knn_k), model_(config), eval_(std::move(eval)),
        data_(train, AugmentOptions{crop_scale_min, 1.0}, config.num_patches(), training_device(recipe.device),
              two_views),
        train_labels_(train.labels), classes_(static_cast<int64_t>(train.classes.size())) {
    if (eval_) held_out_.emplace(*eval_, AugmentOptions{}, config.num_patches(), training_device(recipe.device));
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(recipe.seed);
    model_->initialize(gen);
    fingerprint_ = {{"model", json::parse(mae_config_json(config))},
                    {"mask_ratio", mask_ratio},
                    {"crop_scale_min", crop_scale_min},
                    {"knn_k", knn_k},
                    {"train_data", {{"source", train.source}, {"images", train.size()}}},
                    {"eval_data", eval_ ? json{{"source", eval_->source}, {"images", eval_->size()}} : json(nullptr)}};
  }

  std::string fingerprint() const override { return fingerprint_.dump(); }
  torch::nn::Module& module() override { return *model_; }
  bool trains(const std::string& parameter) const override {
    return parameter != "pos_embed" && parameter != "decoder_pos_embed";  // fixed sin-cos tables
  }
  // timm's add_weight_decay as main_pretrain.py calls it (no skip list: the tokens decay too), and
  // AdamW's betas (0.9, 0.95).
  ParamGroups param_groups(double lr, double weight_decay) override {
    const DecayRule add_weight_decay = [](const std::string& name, const at::Tensor& param) {
      return param.dim() > 1 && !(name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0);
    };
    return weight_decay_groups(*model_, lr, weight_decay, add_weight_decay, {0.9, 0.95});
  }
  const BatchSource& data() const override { return data_; }

  bool graph_safe() const override { return true; }
  StepResult step(const Batch& batch) override {
    const auto out = model_->forward(batch.at("images"), batch.at("noise"), mask_ratio_);
    return {out.loss, {{"loss", out.loss.detach() * static_cast<double>(batch.size)}}};
  }
  Metrics train_metrics(const std::map<std::string, double>& sums, int64_t examples) const override {
    return {{"mae_loss", sums.at("loss") / static_cast<double>(examples)}};
  }

  // The MAE loss on the held-out images, each with the noise of a generator seeded 0; with labels
  // on both splits, the weighted k-NN top-1 of the encoder's class token (all patches visible).
  Metrics evaluate(const TrainRecipe& recipe) override {
    if (!eval_) return {};
    const at::NoGradGuard no_grad;
    model_->eval();
    const at::Device device = training_device(recipe.device);
    const MaskedImages& held_out = *held_out_;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(0);
    double sum = 0;
    for (int64_t begin = 0; begin < held_out.size(); begin += recipe.eval_batch) {
      const int64_t count = std::min(recipe.eval_batch, held_out.size() - begin);
      const Batch b = held_out.batch(at::arange(begin, begin + count, at::kLong), nullptr);
      const at::Tensor noise = at::rand({count, config_.num_patches()}, gen).to(device);
      sum += model_->forward(b.at("images"), noise, mask_ratio_).loss.item<double>() * static_cast<double>(count);
    }
    Metrics metrics = {{"mae_loss", sum / static_cast<double>(held_out.size())},
                       {"images", static_cast<double>(held_out.size())}};
    if (knn_k_ > 0 && classes_ > 1 && train_labels_.defined() && eval_->labels.defined()) {
      // Without a generator the training source yields the images as loaded.
      metrics["knn_top1"] = knn_top1(features(data_, recipe.eval_batch, device), train_labels_,
                                     features(held_out, recipe.eval_batch, device), eval_->labels, classes_, knn_k_);
    }
    model_->train();
    return metrics;
  }
  std::string eval_source() const override { return eval_ ? eval_->source : std::string(); }

  // The encoder's class token over every patch of each image of `data`: [N, D] on the CPU.
  at::Tensor features(const MaskedImages& data, int64_t batch, at::Device device) {
    std::vector<at::Tensor> out;
    for (int64_t begin = 0; begin < data.size(); begin += batch) {
      const int64_t count = std::min(batch, data.size() - begin);
      const Batch b = data.batch(at::arange(begin, begin + count, at::kLong), nullptr);
      out.push_back(model_->forward_encoder(b.at("images"), {}).select(1, 0).to(at::kFloat).cpu());
    }
    return at::cat(out);
  }

  std::map<std::string, std::string> model_metadata() const override {
    return {{kMaeCardKey, mae_config_json(config_)}};
  }

 protected:
  MaeConfig config_;
  double mask_ratio_;
  int64_t knn_k_;
  MaskedAutoencoder model_;
  std::optional<ImageDataset> eval_;
  MaskedImages data_;
  std::optional<MaskedImages> held_out_;  // eval_ on the device
  at::Tensor train_labels_;
  int64_t classes_;
  json fingerprint_;
};

// model_ema_sched.py's teacher: a copy of the student in eval mode whose every state entry moves as
// ema * decay + (1 - decay) * student after each step, decay following DINO's cosine_scheduler from
// ema_decay to 1 over the planned steps.
class LutPretrainTask : public MaePretrainTask {
 public:
  LutPretrainTask(const MaeConfig& config, const ImageDataset& train, std::optional<ImageDataset> eval,
                  const TrainRecipe& recipe, double mask_ratio, int64_t knn_k, double w_mae, double w_bc,
                  double ema_decay)
      : MaePretrainTask(config, train, std::move(eval), recipe, mask_ratio, 1.0, knn_k, /*two_views=*/true),
        teacher_(config), w_mae_(w_mae), w_bc_(w_bc), ema_decay_(ema_decay),
        total_steps_(recipe.epochs * (train.size() / std::min(recipe.batch, train.size()))) {
    copy_module_state(*teacher_, *model_);
    teacher_->to(training_device(recipe.device));
    teacher_->eval();
    for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
    fingerprint_.update({{"w_mae", w_mae}, {"w_bc", w_bc}, {"ema_decay", ema_decay}});
  }

  StepResult step(const Batch& batch) override {
    const auto out = model_->forward_lut(batch.at("view1"), batch.at("view2"), batch.at("noise"), mask_ratio_);
    const at::Tensor teacher = teacher_->forward_lut_teacher(batch.at("view1"), batch.at("view2"));
    const at::Tensor bc = lut_loss(out.q, teacher);
    const double n = static_cast<double>(batch.size);
    return {w_mae_ * out.mae_loss + w_bc_ * bc, {{"loss", out.mae_loss.detach() * n}, {"bc", bc.detach() * n}}};
  }
  Metrics train_metrics(const std::map<std::string, double>& sums, int64_t examples) const override {
    const double n = static_cast<double>(examples);
    return {{"mae_loss", sums.at("loss") / n}, {"lut_loss", sums.at("bc") / n}, {"ema_decay", decay(step_ - 1)}};
  }

  void after_step() override { ema_update(*teacher_, *model_, decay(step_++)); }

  NamedTensors state() const override {
    NamedTensors out = prefixed_state(*teacher_, "teacher/");
    out.emplace_back("ema_step", at::scalar_tensor(step_, at::kLong));
    return out;
  }
  void load_state(const NamedTensors& state, const std::string& source) override {
    load_prefixed_state(*teacher_, state, "teacher/", source);
    const auto it = std::find_if(state.begin(), state.end(), [](const auto& entry) { return entry.first == "ema_step"; });
    SPARSESCOPE_CHECK(it != state.end(), "checkpoint '", source, "' has no 'ema_step'");
    step_ = it->second.item<int64_t>();
  }

 private:
  // cosine_scheduler(ema_decay, 1, epochs, steps per epoch) at iteration `it`.
  double decay(int64_t it) const {
    const double progress = static_cast<double>(std::clamp<int64_t>(it, 0, total_steps_)) / static_cast<double>(total_steps_);
    return 1.0 + 0.5 * (ema_decay_ - 1.0) * (1.0 + std::cos(M_PI * progress));
  }

  MaskedAutoencoder teacher_;
  double w_mae_, w_bc_, ema_decay_;
  int64_t total_steps_;
  int64_t step_ = 0;
};

TrainResult run_pretrain(const TrainRequest& request, const TrainCallbacks& callbacks, bool lut) {
  const TrainTaskEntry& task = train_task(lut ? kLutTask : kMaeTask);
  MaeConfig config;
  try {
    config = mae_config(request.model.empty() ? (lut ? "lut_vit_tiny_patch4_32" : "mae_vit_tiny_patch4_32") : request.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--model: ", e.what());
  }
  if (!request.name.empty()) config.name = request.name;
  config.norm_pix_loss = task_bool(task, request.options, "norm_pix_loss") || config.norm_pix_loss;
  const double mask_ratio = task_number(task, request.options, "mask_ratio");
  SPARSESCOPE_CHECK(mask_ratio > 0 && mask_ratio < 1 && config.visible(mask_ratio) >= 1, "--mask-ratio ", mask_ratio,
                    " must leave some of the ", config.num_patches(), " patches visible and mask some");
  SPARSESCOPE_CHECK(config.in_chans == 3, "MAE pretraining takes RGB images (the model has ", config.in_chans,
                    " channels)");
  double crop_scale_min = 1, w_mae = 1, w_bc = 0, ema_decay = 0;
  const double knn_k = task_number(task, request.options, "knn_k");
  SPARSESCOPE_CHECK(knn_k >= 0 && knn_k == static_cast<double>(static_cast<int64_t>(knn_k)),
                    "--knn-k must be a whole number of neighbours (0: no k-NN evaluation), got ", knn_k);
  if (lut) {
    w_mae = task_number(task, request.options, "w_mae");
    w_bc = task_number(task, request.options, "w_bc");
    ema_decay = task_number(task, request.options, "ema_decay");
    SPARSESCOPE_CHECK(w_mae >= 0 && w_bc >= 0, "--w-mae and --w-bc must not be negative");
    SPARSESCOPE_CHECK(ema_decay > 0 && ema_decay < 1, "--ema-decay must be in (0, 1), got ", ema_decay);
    SPARSESCOPE_CHECK(config.depth_head > 0 && 2 * config.visible(mask_ratio) <= config.num_patches(), "--model ",
                      config.name, ": LUT needs the projector heads (a lut_* configuration) and a mask ratio of at "
                      "least 0.5 (two disjoint visible sets)");
  } else {
    crop_scale_min = task_number(task, request.options, "crop_scale_min");
    SPARSESCOPE_CHECK(crop_scale_min > 0 && crop_scale_min <= 1, "--crop-scale-min must be in (0, 1], got ",
                      crop_scale_min);
  }
  // Images at the model's input size, as the classification datasets load them (the labels serve
  // the k-NN evaluation only).
  ViTConfig geometry = mae_encoder_config(config);
  LabelledSplits data = load_labelled_splits(
      request, geometry, {},
      "pretraining " + config.name + (lut ? " (MAE-LUT" : " (MAE") + ", mask ratio " + std::to_string(mask_ratio) + ")",
      callbacks);
  for (const ImageDataset* split : {&data.train, data.eval ? &*data.eval : nullptr}) {
    if (!split) continue;
    SPARSESCOPE_CHECK(split->images.size(1) == 3, "dataset '", split->source, "' holds gray images; MAE takes RGB");
  }
  const auto failures = data.failures();
  const ImageDataset& train = data.train;
  std::optional<ImageDataset> eval = std::move(data.eval);
  std::unique_ptr<MaePretrainTask> pretrain;
  if (lut) {
    pretrain = std::make_unique<LutPretrainTask>(config, train, std::move(eval), request.recipe, mask_ratio,
                                                 static_cast<int64_t>(knn_k), w_mae, w_bc, ema_decay);
  } else {
    pretrain = std::make_unique<MaePretrainTask>(config, train, std::move(eval), request.recipe, mask_ratio,
                                                 crop_scale_min, static_cast<int64_t>(knn_k));
  }
  TrainResult result = vision::train(*pretrain, request.recipe, callbacks);
  result.model_name = config.name;
  result.failures = failures;
  return result;
}

}  // namespace

namespace detail {

void register_mae_task() {
  const OptionDoc mask_ratio{"mask_ratio", "0.75", "fraction of the patches removed"};
  const OptionDoc norm_pix_loss{"norm_pix_loss", "false",
                                "normalise each target patch by its mean and variance (on in the configurations "
                                "for 32 x 32 images)"};
  const OptionDoc knn_k{"knn_k", "20",
                        "neighbours of the weighted k-NN evaluation of the class token on labelled splits (0: off)"};
  register_train_task({kMaeTask,
                       "MAE pretraining (He et al. 2022) on images without labels (an image folder; labels unused): "
                       "--model a MAE configuration (default mae_vit_tiny_patch4_32), the loss on masked patches",
                       {mask_ratio, norm_pix_loss, knn_k,
                        {"crop_scale_min", "0.2", "RandomResizedCrop's smallest area fraction"}},
                       [](const TrainRequest& r, const TrainCallbacks& cb) { return run_pretrain(r, cb, false); }});
  register_train_task({kLutTask,
                       "MAE-LUT pretraining (Kim et al. 2024): MAE on view 1 plus the unmasked-token loss between "
                       "the two views' projections and an EMA teacher's (--model a lut_* configuration, default "
                       "lut_vit_tiny_patch4_32)",
                       {mask_ratio, norm_pix_loss, knn_k, {"w_mae", "1.0", "weight of the MAE loss"},
                        {"w_bc", "0.25", "weight of the unmasked-token loss (PRETRAIN.md's recommendation)"},
                        {"ema_decay", "0.996", "the teacher's first EMA decay; it rises to 1 along a cosine"}},
                       [](const TrainRequest& r, const TrainCallbacks& cb) { return run_pretrain(r, cb, true); }});
}

}  // namespace detail

}  // namespace sparsescope::vision
