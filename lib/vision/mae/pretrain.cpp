// MAE pretraining as a task of the training loop (train_loop.h): main_pretrain.py's recipe on
// images without labels (RandomResizedCrop with scale (0.2, 1), horizontal flips, ImageNet's mean
// and std), the masking noise drawn from the loop's generator so that a resumed run is exact,
// AdamW with betas (0.9, 0.95) and timm's add_weight_decay groups, and the MAE loss on held-out
// images (fixed noise) as the evaluation.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/augment.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/mae.h"
#include "sparsescope/vision/train_task.h"

namespace sparsescope::vision {

namespace {

using nlohmann::json;

constexpr const char* kMaeTask = "mae";
constexpr float kMean[3] = {0.485f, 0.456f, 0.406f}, kStd[3] = {0.229f, 0.224f, 0.225f};

// Images on the training device, normalised after the geometric augmentation, with the masking
// noise of every image drawn from the same generator.
class MaskedImages : public BatchSource {
 public:
  MaskedImages(const ImageDataset& data, const AugmentOptions& augment, int64_t patches, at::Device device)
      : images_(data.images.to(device)), source_(data.source), augment_(augment), patches_(patches) {
    const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
    mean_ = at::tensor(at::ArrayRef<float>(kMean, 3)).to(options).view({1, 3, 1, 1});
    std_ = at::tensor(at::ArrayRef<float>(kStd, 3)).to(options).view({1, 3, 1, 1});
  }
  int64_t size() const override { return images_.size(0); }
  std::string source() const override { return source_; }

  Batch batch(const at::Tensor& index, at::Generator* gen) const override {
    at::Tensor x = images_.index_select(0, index).to(at::kFloat).div_(255);
    if (gen) x = augment_geometry(x, augment_, *gen);
    x = x.sub_(mean_).div_(std_);
    const at::Tensor noise = gen ? at::rand({index.size(0), patches_}, *gen) : at::Tensor();
    return {{{"images", x}, {"noise", noise.defined() ? noise.to(x.device()) : noise}}, index.size(0)};
  }

 private:
  at::Tensor images_, mean_, std_;
  std::string source_;
  AugmentOptions augment_;
  int64_t patches_;
};

class MaePretrainTask : public TrainTask {
 public:
  MaePretrainTask(const MaeConfig& config, ImageDataset train, std::optional<ImageDataset> eval,
                  const TrainRecipe& recipe, double mask_ratio, double crop_scale_min)
      : config_(config), mask_ratio_(mask_ratio), model_(config), eval_(std::move(eval)),
        data_(train, AugmentOptions{crop_scale_min, 1.0}, config.num_patches(), training_device(recipe.device)) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(recipe.seed);
    model_->initialize(gen);
    fingerprint_ = {{"model", json::parse(mae_config_json(config))},
                    {"mask_ratio", mask_ratio},
                    {"crop_scale_min", crop_scale_min},
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
  std::vector<torch::optim::OptimizerParamGroup> param_groups(double lr, double weight_decay) override {
    std::vector<at::Tensor> decay, no_decay;
    for (const auto& item : model_->named_parameters(true)) {
      if (!item.value().requires_grad()) continue;
      const bool bias = item.key().size() >= 5 && item.key().compare(item.key().size() - 5, 5, ".bias") == 0;
      (item.value().dim() <= 1 || bias ? no_decay : decay).push_back(item.value());
    }
    const auto options = [lr](double wd) {
      return std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(lr).weight_decay(wd).betas(std::make_tuple(0.9, 0.95)));
    };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(no_decay, options(0.0));
    groups.emplace_back(decay, options(weight_decay));
    return groups;
  }
  const BatchSource& data() const override { return data_; }

  StepResult step(const Batch& batch) override {
    const auto out = model_->forward(batch.at("images"), batch.at("noise"), mask_ratio_);
    return {out.loss, {{"loss", out.loss.detach() * static_cast<double>(batch.size)}}};
  }
  Metrics train_metrics(const std::map<std::string, double>& sums, int64_t examples) const override {
    return {{"mae_loss", sums.at("loss") / static_cast<double>(examples)}};
  }

  // The MAE loss on the held-out images, each with the noise of a generator seeded 0.
  Metrics evaluate(const TrainRecipe& recipe) override {
    if (!eval_) return {};
    const at::NoGradGuard no_grad;
    model_->eval();
    const MaskedImages held_out(*eval_, {}, config_.num_patches(), training_device(recipe.device));
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(0);
    double sum = 0;
    for (int64_t begin = 0; begin < held_out.size(); begin += recipe.eval_batch) {
      const int64_t count = std::min(recipe.eval_batch, held_out.size() - begin);
      const Batch b = held_out.batch(at::arange(begin, begin + count, at::kLong).to(training_device(recipe.device)), nullptr);
      const at::Tensor noise = at::rand({count, config_.num_patches()}, gen).to(b.at("images").device());
      sum += model_->forward(b.at("images"), noise, mask_ratio_).loss.item<double>() * static_cast<double>(count);
    }
    model_->train();
    return {{"mae_loss", sum / static_cast<double>(held_out.size())}, {"images", static_cast<double>(held_out.size())}};
  }
  std::string eval_source() const override { return eval_ ? eval_->source : std::string(); }

  std::map<std::string, std::string> model_metadata() const override {
    return {{kMaeCardKey, mae_config_json(config_)}};
  }

 private:
  MaeConfig config_;
  double mask_ratio_;
  MaskedAutoencoder model_;
  std::optional<ImageDataset> eval_;
  MaskedImages data_;
  json fingerprint_;
};

TrainResult run_mae(const TrainRequest& request, const TrainCallbacks& callbacks) {
  const TrainTaskEntry& task = train_task(kMaeTask);
  MaeConfig config;
  try {
    config = mae_config(request.model.empty() ? "mae_vit_tiny_patch4_32" : request.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--model: ", e.what());
  }
  if (!request.name.empty()) config.name = request.name;
  config.norm_pix_loss = task_bool(task, request.options, "norm_pix_loss") || config.norm_pix_loss;
  const double mask_ratio = task_number(task, request.options, "mask_ratio");
  const double crop_scale_min = task_number(task, request.options, "crop_scale_min");
  SPARSESCOPE_CHECK(mask_ratio > 0 && mask_ratio < 1 && config.visible(mask_ratio) >= 1, "--mask-ratio ", mask_ratio,
                    " must leave some of the ", config.num_patches(), " patches visible and mask some");
  SPARSESCOPE_CHECK(crop_scale_min > 0 && crop_scale_min <= 1, "--crop-scale-min must be in (0, 1], got ",
                    crop_scale_min);
  SPARSESCOPE_CHECK(config.in_chans == 3, "MAE pretraining takes RGB images (the model has ", config.in_chans,
                    " channels)");
  // Images at the model's input size, as the classification datasets load them (labels unused).
  const ViTConfig geometry = mae_encoder_config(config);
  const DatasetSpec spec = parse_dataset_spec(request.dataset);
  ImageDataset train = load_dataset(spec, Split::Train, geometry, {}, request.limit_train);
  std::optional<ImageDataset> eval;
  if (!request.eval_dataset.empty()) {
    eval = load_dataset(parse_dataset_spec(request.eval_dataset), Split::Test, geometry, {}, request.limit_eval);
  } else if (has_split(spec, Split::Test)) {
    eval = load_dataset(spec, Split::Test, geometry, {}, request.limit_eval);
  }
  for (const ImageDataset* data : {&train, eval ? &*eval : nullptr}) {
    if (!data) continue;
    SPARSESCOPE_CHECK(data->images.size(1) == 3, "dataset '", data->source, "' holds gray images; MAE takes RGB");
  }
  std::vector<std::pair<std::string, std::string>> failures = train.failures;
  if (eval) failures.insert(failures.end(), eval->failures.begin(), eval->failures.end());
  if (callbacks.on_note) {
    for (const auto& [file, reason] : failures) callbacks.on_note("skipped: " + file + ": " + reason);
    callbacks.on_note("pretraining " + config.name + " (MAE, mask ratio " + std::to_string(mask_ratio) + ") on " +
                      std::to_string(train.size()) + " images of " + train.source +
                      (eval ? ", evaluating on " + std::to_string(eval->size()) + " of " + eval->source : std::string()));
  }
  MaePretrainTask pretrain(config, std::move(train), std::move(eval), request.recipe, mask_ratio, crop_scale_min);
  TrainResult result = vision::train(pretrain, request.recipe, callbacks);
  result.model_name = config.name;
  result.failures = failures;
  return result;
}

}  // namespace

namespace detail {

void register_mae_task() {
  register_train_task({kMaeTask,
                       "MAE pretraining (He et al. 2022) on images without labels (an image folder; labels unused): "
                       "--model a MAE configuration (default mae_vit_tiny_patch4_32), the loss on masked patches",
                       {{"mask_ratio", "0.75", "fraction of the patches removed"},
                        {"norm_pix_loss", "false", "normalise each target patch by its mean and variance (on in "
                                                   "the configurations for 32 x 32 images)"},
                        {"crop_scale_min", "0.2", "RandomResizedCrop's smallest area fraction"}},
                       run_mae});
}

}  // namespace detail

}  // namespace sparsescope::vision
