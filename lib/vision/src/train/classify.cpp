// Image classification as a task of the training loop (train_loop.h): a ViT from timm's
// initialisation, labelled images augmented as timm's training transform does, label-smoothed
// cross-entropy (or a method's objective), top-1 during training and top-1/top-5 on held-out data.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <nlohmann/json.hpp>

#include "host_to_device.h"
#include "init.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/evaluate.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/train.h"
#include "sparsescope/vision/vit_input.h"

namespace sparsescope::vision {

namespace {

using nlohmann::json;

// Labelled images on the training device; batches are normalised with the model's mean and std
// after the geometric augmentation (normalize_unit_pixels), then randomly erased.
class ImageBatches : public BatchSource {
 public:
  ImageBatches(const ImageDataset& data, const EvalTransform& norm, const AugmentOptions& augment, at::Device device)
      : images_(data.images.to(device)), labels_(data.labels.to(device)), source_(data.source), norm_(norm),
        augment_(augment) {}

  int64_t size() const override { return labels_.size(0); }
  std::string source() const override { return source_; }

  Batch batch(const at::Tensor& index, at::Generator* gen) const override {
    const at::Tensor picked = detail::to_device_async(index, images_.device());
    at::Tensor x = images_.index_select(0, picked).to(at::kFloat).div_(255);  // uint8 [N, C, S, S] on the device
    if (gen) x = augment_geometry(x, augment_, *gen);
    x = normalize_unit_pixels(x, norm_);
    if (gen && augment_.erase_prob > 0) x = random_erase(x, augment_.erase_prob, *gen);
    return {{{"images", x}, {"labels", labels_.index_select(0, picked)}}, index.size(0)};
  }

 private:
  at::Tensor images_, labels_;
  std::string source_;
  EvalTransform norm_;
  AugmentOptions augment_;
};

json augment_json(const AugmentOptions& a) {
  return {{"scale", {a.scale_min, a.scale_max}}, {"ratio", {a.ratio_min, a.ratio_max}}, {"pad", a.pad},
          {"hflip", a.hflip},                    {"erase_prob", a.erase_prob}};
}

// `train`, once it and `eval` are checked against `config` and the recipe.
const ImageDataset& checked(const ViTConfig& config, const ImageDataset& train, const ImageDataset* eval,
                            const TrainOptions& o) {
  SPARSESCOPE_CHECK(o.label_smoothing >= 0 && o.label_smoothing < 1, "--label-smoothing must be in [0, 1), got ",
                    o.label_smoothing);
  SPARSESCOPE_CHECK(config.num_classes == static_cast<int64_t>(train.classes.size()), config.name, " has ",
                    config.num_classes, " classes, the training data '", train.source, "' ", train.classes.size());
  for (const ImageDataset* data : {&train, eval}) {
    if (!data) continue;
    SPARSESCOPE_CHECK(data->size() > 0, "dataset '", data->source, "' is empty");
    SPARSESCOPE_CHECK(data->images.size(1) == config.in_chans && data->images.size(2) == config.img_size &&
                          data->images.size(3) == config.img_size,
                      "dataset '", data->source, "' holds images ", data->images.sizes().slice(1), ", ", config.name,
                      " takes [", config.in_chans, ", ", config.img_size, ", ", config.img_size, "]");
    SPARSESCOPE_CHECK(data->labels.max().item<int64_t>() < config.num_classes, "dataset '", data->source,
                      "' has labels beyond the model's ", config.num_classes, " classes");
  }
  return train;
}

class ClassifyTask : public TrainTask {
 public:
  ClassifyTask(const ViTConfig& config, const ImageDataset& train, const ImageDataset* eval, const TrainOptions& o)
      : options_(o), eval_(eval), classes_(train.classes), model_(nullptr),
        data_(checked(config, train, eval, o), config.eval, o.augment, training_device(o.device)) {
    at::Generator init_gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    model_ = VisionTransformer(config);
    detail::init_for_training(model_, init_gen);
    if (o.objective.init) o.objective.init(model_);
    fingerprint_ = {{"model", json::parse(model_card_metadata({config, classes_}).at(kModelCardKey))},
                    {"train_data", {{"source", train.source}, {"images", train.size()}}},
                    {"eval_data", eval ? json{{"source", eval->source}, {"images", eval->size()}} : json(nullptr)},
                    {"label_smoothing", o.label_smoothing},
                    {"augment", augment_json(o.augment)},
                    {"objective", o.objective.name}};
  }

  std::string fingerprint() const override { return fingerprint_.dump(); }
  torch::nn::Module& module() override { return *model_; }
  bool trains(const std::string& parameter) const override {
    return !options_.objective.trains || options_.objective.trains(parameter);
  }
  const BatchSource& data() const override { return data_; }

  StepResult step(const Batch& batch) override {
    const at::Tensor& x = batch.at("images");
    const at::Tensor& y = batch.at("labels");
    at::Tensor logits, loss;
    if (options_.objective.loss) {
      loss = options_.objective.loss(model_, x, y, options_.label_smoothing, logits);
    } else {
      logits = model_->forward(x);  // [B, classes]
      loss = at::cross_entropy_loss(logits, y, {}, at::Reduction::Mean, -100, options_.label_smoothing);
    }
    return {loss, {{"correct", logits.detach().argmax(1).eq(y).sum()}}};
  }

  Metrics train_metrics(const std::map<std::string, double>& sums, int64_t examples) const override {
    return {{"top1", sums.at("correct") / static_cast<double>(examples)}};
  }

  Metrics evaluate(const TrainRecipe& recipe) override {
    if (!eval_) return {};
    const EvalResult e = vision::evaluate(model_, *eval_, {recipe.eval_batch, recipe.precision, nullptr});
    return {{"loss", e.loss}, {"top1", e.top1}, {"top5", e.top5}, {"images", static_cast<double>(e.images)}};
  }
  std::string eval_source() const override { return eval_ ? eval_->source : std::string(); }

  std::map<std::string, std::string> model_metadata() const override {
    return model_card_metadata({model_->config(), classes_});
  }

 private:
  const TrainOptions& options_;
  const ImageDataset* eval_;
  std::vector<std::string> classes_;
  VisionTransformer model_;
  ImageBatches data_;
  json fingerprint_;
};

}  // namespace

TrainResult train_classifier(const ViTConfig& config, const ImageDataset& train, const ImageDataset* eval,
                             const TrainOptions& options, const TrainCallbacks& callbacks) {
  ClassifyTask task(config, train, eval, options);
  return vision::train(task, options, callbacks);
}

}  // namespace sparsescope::vision
