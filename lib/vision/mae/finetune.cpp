// MAE fine-tuning (main_finetune.py, engine_finetune.py) and linear probing (main_linprobe.py) as
// tasks of the training loop, on the encoder of a MAE or MAE-LUT pretraining run (its
// model.safetensors) under models_vit.py's head (global pool with fc_norm, or the class token).
// Fine-tuning: MAE's layer-wise lr decay, stochastic depth, timm's RandomResizedCrop (0.08-1) and
// flips, RandAugment (rand-m9-mstd0.5-inc1), RandomErasing in 'pixel' mode, batch Mixup/CutMix with
// label smoothing and SoftTargetCrossEntropy. Probing: the frozen encoder, BatchNorm1d without affine before the head,
// LARS, crops and flips only. Every random draw comes from the loop's generator, so a resumed run is
// exact. The result is a ViT classifier with its model card (`sparsescope eval`).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/augment.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/evaluate.h"
#include "sparsescope/vision/mae.h"
#include "sparsescope/vision/mixup.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/rand_augment.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/train.h"
#include "sparsescope/vision/train_optim.h"
#include "sparsescope/vision/train_task.h"
#include "sparsescope/vision/vit.h"
#include "train/host_to_device.h"

namespace sparsescope::vision {

namespace {

using nlohmann::json;

constexpr const char* kFinetuneTask = "mae-finetune";
constexpr const char* kProbeTask = "mae-linprobe";

// Labelled images on the training device: augmented, normalised, erased, mixed, with the batch's
// stochastic-depth scales ("images", "targets", "labels", "drop_path").
class FinetuneImages : public BatchSource {
 public:
  FinetuneImages(const ImageDataset& data, const ViTConfig& config, const AugmentOptions& augment,
                 std::optional<RandAugmentOptions> rand_augment, double erase, const MixupOptions& mixup,
                 at::Device device)
      : images_(data.images.to(device)), labels_(data.labels.to(device)), source_(data.source), config_(config),
        augment_(augment), rand_augment_(std::move(rand_augment)), erase_(erase), mixup_(mixup) {
    const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
    mean_ = at::tensor(at::ArrayRef<float>(config.eval.mean.data(), 3)).to(options).view({1, 3, 1, 1});
    std_ = at::tensor(at::ArrayRef<float>(config.eval.std.data(), 3)).to(options).view({1, 3, 1, 1});
  }
  int64_t size() const override { return images_.size(0); }
  std::string source() const override { return source_; }

  Batch batch(const at::Tensor& index, at::Generator* gen) const override {
    const at::Tensor picked = detail::to_device_async(index, images_.device());
    at::Tensor x = images_.index_select(0, picked).to(at::kFloat).div_(255);
    const at::Tensor labels = labels_.index_select(0, picked);
    if (gen) x = augment_geometry(x, augment_, *gen);
    if (gen && rand_augment_) x = vision::rand_augment(x, *rand_augment_, *gen);
    x = (x - mean_) / std_;
    if (gen && erase_ > 0) x = random_erase(x, erase_, *gen, /*pixel_fill=*/true);
    const MixDraw draw = gen ? draw_mix(mixup_, x.size(2), x.size(3), *gen) : MixDraw{};
    auto [mixed, targets] = apply_mix(x, labels, config_.num_classes, draw, mixup_.label_smoothing);
    Batch b{{{"images", mixed}, {"targets", targets}, {"labels", labels}}, index.size(0)};
    if (gen) b.tensors["drop_path"] = drop_path_scales(config_, index.size(0), gen, x.options());
    return b;
  }

 private:
  at::Tensor images_, labels_, mean_, std_;
  std::string source_;
  ViTConfig config_;
  AugmentOptions augment_;
  std::optional<RandAugmentOptions> rand_augment_;
  double erase_;
  MixupOptions mixup_;
};

// What a fine-tuning or probing run sets besides the loop's recipe.
struct FinetuneOptions {
  bool probe = false;       ///< linear probing: only the head trains, with LARS
  AugmentOptions augment;   ///< RandomResizedCrop and flips
  std::optional<RandAugmentOptions> rand_augment;  ///< fine-tuning's RandAugment
  double erase = 0;         ///< RandomErasing probability
  MixupOptions mixup;       ///< off for probing
  double layer_decay = 1;   ///< fine-tuning's layer-wise lr decay
};

class MaeFinetuneTask : public TrainTask {
 public:
  MaeFinetuneTask(const ViTConfig& config, const NamedTensors& pretrained, const std::string& pretrained_path,
                  const ImageDataset& train, std::optional<ImageDataset> eval, const TrainRecipe& recipe,
                  const FinetuneOptions& options)
      : model_(config),
        data_(train, config, options.augment, options.rand_augment, options.erase, options.mixup,
              training_device(recipe.device)),
        eval_(std::move(eval)), classes_(train.classes), options_(options) {
    const AugmentOptions& augment = options.augment;
    const MixupOptions& mixup = options.mixup;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(recipe.seed);
    load_encoder(pretrained, pretrained_path, gen);
    fingerprint_ = {{"pretrained", pretrained_path},
                    {"probe", options.probe},
                    {"model", json::parse(model_card_metadata({config, classes_}).at(kModelCardKey))},
                    {"drop_path", config.drop_path_rate},
                    {"layer_decay", options.layer_decay},
                    {"crop_scale", {augment.scale_min, augment.scale_max}},
                    {"reprob", options.erase},
                    {"rand_augment", options.rand_augment ? json{options.rand_augment->magnitude,
                                                                 options.rand_augment->magnitude_std}
                                                          : json(nullptr)},
                    {"mixup", {mixup.mixup_alpha, mixup.cutmix_alpha, mixup.prob, mixup.switch_prob}},
                    {"smoothing", mixup.label_smoothing},
                    {"train_data", {{"source", train.source}, {"images", train.size()}}},
                    {"eval_data", eval_ ? json{{"source", eval_->source}, {"images", eval_->size()}} : json(nullptr)}};
  }

  std::string fingerprint() const override { return fingerprint_.dump(); }
  torch::nn::Module& module() override { return *model_; }
  bool trains(const std::string& parameter) const override {
    return !options_.probe || parameter.rfind("head.", 0) == 0;  // probing: the encoder stays frozen
  }
  ParamGroups param_groups(double lr, double weight_decay) override {
    if (options_.probe) return lars_groups(*model_, lr, weight_decay);
    return layer_decay_groups(*model_, model_->config().depth, lr, weight_decay, options_.layer_decay);
  }
  const BatchSource& data() const override { return data_; }

  bool graph_safe() const override { return true; }  // the batch brings its stochastic-depth draws
  StepResult step(const Batch& batch) override {
    if (batch.tensors.count("drop_path")) model_->set_drop_path(batch.at("drop_path"));
    const at::Tensor logits = model_->forward(batch.at("images"));
    const at::Tensor loss = soft_target_cross_entropy(logits, batch.at("targets"));
    const at::Tensor correct = logits.argmax(1).eq(batch.at("labels")).sum();  // against the unmixed labels
    return {loss, {{"loss", loss.detach() * static_cast<double>(batch.size)}, {"correct", correct}}};
  }
  Metrics train_metrics(const std::map<std::string, double>& sums, int64_t examples) const override {
    const auto n = static_cast<double>(examples);
    return {{"loss", sums.at("loss") / n}, {"top1", sums.at("correct") / n}};
  }

  Metrics evaluate(const TrainRecipe& recipe) override {
    if (!eval_) return {};
    EvalOptions options;
    options.batch = recipe.eval_batch;
    const EvalResult r = vision::evaluate(model_, *eval_, options);
    return {{"top1", r.top1}, {"top5", r.top5}, {"loss", r.loss}, {"images", static_cast<double>(r.images)}};
  }
  std::string eval_source() const override { return eval_ ? eval_->source : std::string(); }
  std::map<std::string, std::string> model_metadata() const override {
    return model_card_metadata({model_->config(), classes_});
  }

 private:
  // main_finetune.py and main_linprobe.py: every encoder weight from the checkpoint; missing may be
  // only the new head (and fc_norm under global pooling), which keep their initialisation: the
  // head's weight trunc_normal (std 2e-5 fine-tuning, 0.01 probing) and zero bias, fc_norm ones and
  // zeros. The decoder, mask token, LUT's projector and predictor and (under global pooling) the
  // final norm are left out.
  void load_encoder(const NamedTensors& pretrained, const std::string& path, at::Generator& gen) {
    std::map<std::string, const at::Tensor*> given;
    for (const auto& [name, tensor] : pretrained) given.emplace(name, &tensor);
    const std::string head = options_.probe ? "head.1." : "head.";
    std::set<std::string> allowed_missing{head + "weight", head + "bias"};
    if (model_->config().global_pool) allowed_missing.insert({"fc_norm.weight", "fc_norm.bias"});
    std::string unexpected_missing;
    at::NoGradGuard no_grad;
    for (auto& item : model_->named_parameters(/*recurse=*/true)) {
      const auto it = given.find(item.key());
      if (it == given.end() || allowed_missing.count(item.key())) {
        if (!allowed_missing.count(item.key())) unexpected_missing += (unexpected_missing.empty() ? "" : ", ") + item.key();
        continue;
      }
      SPARSESCOPE_CHECK(it->second->sizes() == item.value().sizes(), "--pretrained '", path, "': ", item.key(), " is ",
                        it->second->sizes(), ", the model's is ", item.value().sizes());
      item.value().copy_(*it->second);
    }
    SPARSESCOPE_CHECK(unexpected_missing.empty(), "--pretrained '", path, "' lacks encoder weights: ",
                      unexpected_missing);
    auto params = model_->named_parameters();
    params[head + "weight"].normal_(0, options_.probe ? 0.01 : 2e-5, gen).clamp_(-2.0, 2.0);  // absolute bounds
    params[head + "bias"].zero_();
  }

  VisionTransformer model_;
  FinetuneImages data_;
  std::optional<ImageDataset> eval_;
  std::vector<std::string> classes_;
  FinetuneOptions options_;
  json fingerprint_;
};

TrainResult run_finetune(const TrainRequest& request, const TrainCallbacks& callbacks, bool probe) {
  const TrainTaskEntry& task = train_task(probe ? kProbeTask : kFinetuneTask);
  const std::string pretrained_path = task_string(task, request.options, "pretrained");
  SPARSESCOPE_CHECK(!pretrained_path.empty(), "--pretrained: name the model.safetensors of a `sparsescope train --task "
                    "mae` or `--task mae-lut` run");
  SPARSESCOPE_CHECK(request.model.empty(), "--model: ", task.name, " takes its model from --pretrained");
  const SafetensorsFile pretrained = load_safetensors(pretrained_path);
  const auto card = pretrained.metadata.find(kMaeCardKey);
  SPARSESCOPE_CHECK(card != pretrained.metadata.end(), "--pretrained '", pretrained_path, "' carries no ", kMaeCardKey,
                    " model card (not the weights of a MAE or MAE-LUT pretraining run)");
  MaeConfig mae;
  try {
    mae = mae_config_from_json(card->second);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--pretrained '", pretrained_path, "': ", e.what());
  }

  ViTConfig config = mae_encoder_config(mae);
  config.name = request.name.empty() ? mae.name + (probe ? "_linprobe" : "_finetuned") : request.name;
  // Fine-tuning pools globally unless --cls-token; probing reads the class token unless --global-pool.
  config.global_pool = probe ? task_bool(task, request.options, "global_pool") : !task_bool(task, request.options, "cls_token");
  config.head_norm = probe;
  FinetuneOptions options;
  options.probe = probe;
  if (!probe) {
    config.drop_path_rate = task_number(task, request.options, "drop_path");
    SPARSESCOPE_CHECK(config.drop_path_rate >= 0 && config.drop_path_rate < 1, "--drop-path must be in [0, 1), got ",
                      config.drop_path_rate);
  }
  config.eval = EvalTransform{};  // ImageNet's mean and std, as the pretraining normalised
  config.eval.img_size = static_cast<int>(config.img_size);
  config.eval.crop_pct = 1.0;  // images come at the model's size (MAE: 224 / 256 for 224 crops of larger photos)

  const std::vector<double> scale = task_numbers(task, request.options, "crop_scale");
  SPARSESCOPE_CHECK(scale.size() == 2 && scale[0] > 0 && scale[0] <= scale[1] && scale[1] <= 1,
                    "--crop-scale takes MIN MAX in (0, 1]");
  options.augment.scale_min = scale[0];
  options.augment.scale_max = scale[1];
  MixupOptions& mixup = options.mixup;
  if (probe) {
    mixup.mixup_alpha = mixup.cutmix_alpha = mixup.label_smoothing = 0;  // plain cross-entropy
  } else {
    options.layer_decay = task_number(task, request.options, "layer_decay");
    SPARSESCOPE_CHECK(options.layer_decay > 0 && options.layer_decay <= 1, "--layer-decay must be in (0, 1], got ",
                      options.layer_decay);
    const std::vector<double> rand_augment = task_numbers(task, request.options, "rand_augment");
    const bool off = rand_augment.empty() || (rand_augment.size() == 1 && rand_augment[0] == 0);
    SPARSESCOPE_CHECK(off || (rand_augment.size() == 2 && rand_augment[0] > 0 && rand_augment[0] <= 10 &&
                              rand_augment[1] >= 0),
                      "--rand-augment takes MAGNITUDE STD (magnitude in (0, 10]), or 0 to turn it off");
    if (!off) {
      options.rand_augment = RandAugmentOptions{};
      options.rand_augment->magnitude = rand_augment[0];
      options.rand_augment->magnitude_std = rand_augment[1];
      for (int c = 0; c < 3; ++c) options.rand_augment->fill[c] = std::round(255 * config.eval.mean[c]) / 255;
    }
    options.erase = task_number(task, request.options, "reprob");
    SPARSESCOPE_CHECK(options.erase >= 0 && options.erase <= 1, "--reprob must be in [0, 1], got ", options.erase);
    mixup.mixup_alpha = task_number(task, request.options, "mixup");
    mixup.cutmix_alpha = task_number(task, request.options, "cutmix");
    mixup.prob = task_number(task, request.options, "mixup_prob");
    mixup.switch_prob = task_number(task, request.options, "mixup_switch_prob");
    mixup.label_smoothing = task_number(task, request.options, "smoothing");
    SPARSESCOPE_CHECK(mixup.label_smoothing >= 0 && mixup.label_smoothing < 1, "--smoothing must be in [0, 1)");
    SPARSESCOPE_CHECK(!mixup.active() || request.recipe.batch % 2 == 0, "--batch ", request.recipe.batch,
                      " must be even with mixup or cutmix (timm pairs each sample with the batch reversed)");
  }

  LabelledSplits data = load_labelled_splits(
      request, config, {},
      std::string(probe ? "linear probing " : "fine-tuning ") + mae.name + " from " + pretrained_path + " as " + config.name,
      callbacks);
  SPARSESCOPE_CHECK(data.train.images.size(1) == 3, "dataset '", data.train.source,
                    "' holds gray images; the encoder takes RGB");
  const auto failures = data.failures();
  MaeFinetuneTask finetune(config, pretrained.tensors, pretrained_path, data.train, std::move(data.eval), request.recipe,
                           options);
  TrainResult result = vision::train(finetune, request.recipe, callbacks);
  result.model_name = config.name;
  result.failures = failures;
  return result;
}

}  // namespace

namespace detail {

void register_mae_finetune_task() {
  const OptionDoc pretrained{"pretrained", "\"\"", "the model.safetensors of the pretraining run"};
  const OptionDoc crop_scale{"crop_scale", "[0.08, 1]", "RandomResizedCrop area range MIN MAX"};
  register_train_task(
      {kFinetuneTask,
       "MAE fine-tuning (main_finetune.py) of a `--task mae` or `--task mae-lut` encoder on labelled images "
       "(an image folder DIR/<class>/<image> with DIR/train and DIR/test): a ViT classifier",
       {pretrained,
        {"cls_token", "false", "classify the class token (models_vit.py without global_pool)"},
        {"layer_decay", "0.75", "layer-wise learning-rate decay"},
        {"drop_path", "0.1", "stochastic depth of the last block"},
        crop_scale,
        {"rand_augment", "[9, 0.5]", "RandAugment magnitude and its std (rand-m9-mstd0.5-inc1; 0: off)"},
        {"reprob", "0.25", "RandomErasing probability ('pixel' mode)"},
        {"mixup", "0.8", "mixup alpha (0: off)"},
        {"cutmix", "1.0", "cutmix alpha (0: off)"},
        {"mixup_prob", "1.0", "probability of mixing a batch"},
        {"mixup_switch_prob", "0.5", "probability of cutmix rather than mixup"},
        {"smoothing", "0.1", "label smoothing"}},
       [](const TrainRequest& r, const TrainCallbacks& cb) { return run_finetune(r, cb, false); }});
  register_train_task(
      {kProbeTask,
       "MAE linear probing (main_linprobe.py) of a `--task mae` or `--task mae-lut` encoder: the frozen encoder, "
       "BatchNorm1d without affine and a linear head trained with LARS (give --weight-decay 0, --lr and "
       "--warmup-epochs as the run wants)",
       {pretrained, {"global_pool", "false", "probe the mean of the patch tokens instead of the class token"}, crop_scale},
       [](const TrainRequest& r, const TrainCallbacks& cb) { return run_finetune(r, cb, true); }});
}

}  // namespace detail

}  // namespace sparsescope::vision
