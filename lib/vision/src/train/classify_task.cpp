// The classification task of `sparsescope train`: a ViT from a named configuration with the
// architecture options applied, trained from scratch on labelled images (train_classifier); and
// what every task that trains a classifier shares: the recipe's options and the data of a request.
#include <ATen/ATen.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <nlohmann/json.hpp>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/train.h"

namespace sparsescope::vision {

namespace {

// Architecture overrides of the named configuration, then normalisation.
const std::vector<OptionDoc> kModelOptions = {
    {"img_size", "0", "input size (0: the configuration's; fashion-mnist: 28)"},
    {"patch_size", "0", "patch size (0: the configuration's)"},
    {"in_chans", "0", "input channels, 1 or 3 (0: the configuration's; fashion-mnist: 1)"},
    {"embed_dim", "0", "embedding width (0: the configuration's)"},
    {"depth", "0", "blocks (0: the configuration's)"},
    {"num_heads", "0", "attention heads (0: the configuration's)"},
    {"mlp_ratio", "0", "MLP width / embedding width (0: the configuration's)"},
    {"crop_pct", "0", "evaluation center-crop fraction (0: the configuration's; fashion-mnist: 1)"},
    {"mean", "[]", "normalisation mean, 1 or 3 values (default: measured on the training data)"},
    {"std", "[]", "normalisation std, 1 or 3 values (with --mean)"},
};

// A whole, non-negative option value.
int64_t count_option(const TrainTaskEntry& task, const std::string& options, const std::string& name) {
  const double v = task_number(task, options, name);
  SPARSESCOPE_CHECK(v >= 0 && v == static_cast<double>(static_cast<int64_t>(v)), "option '", name,
                    "' must be a whole number, not negative, got ", v);
  return static_cast<int64_t>(v);
}

// The named configuration with the request's overrides; `fashion_mnist`: its native 28 x 28 gray.
ViTConfig build_config(const TrainTaskEntry& task, const TrainRequest& request, bool fashion_mnist) {
  ViTConfig c;
  try {
    c = vit_config(request.model.empty() ? "vit_tiny_patch16_224" : request.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--model: ", e.what());
  }
  if (fashion_mnist) {
    c.img_size = 28;
    c.in_chans = 1;
    c.eval.crop_pct = 1.0;
  }
  const std::string& o = request.options;
  for (auto [name, field] : {std::pair{"img_size", &c.img_size}, {"patch_size", &c.patch_size},
                             {"in_chans", &c.in_chans}, {"embed_dim", &c.embed_dim}, {"depth", &c.depth},
                             {"num_heads", &c.num_heads}}) {
    if (const int64_t v = count_option(task, o, name)) *field = v;
  }
  for (auto [name, field] : {std::pair{"mlp_ratio", &c.mlp_ratio}, {"crop_pct", &c.eval.crop_pct}}) {
    const double v = task_number(task, o, name);
    SPARSESCOPE_CHECK(v >= 0, "option '", name, "' must not be negative, got ", v);
    if (v > 0) *field = v;
  }
  SPARSESCOPE_CHECK(c.eval.crop_pct <= 1, "--crop-pct must be at most 1, got ", c.eval.crop_pct);
  c.eval.img_size = static_cast<int>(c.img_size);
  c.distilled = false;
  SPARSESCOPE_CHECK(c.img_size % c.patch_size == 0, "--img-size ", c.img_size, " is not a multiple of --patch-size ",
                    c.patch_size);
  SPARSESCOPE_CHECK(c.embed_dim % c.num_heads == 0, "--embed-dim ", c.embed_dim, " is not a multiple of --num-heads ",
                    c.num_heads);
  SPARSESCOPE_CHECK(c.in_chans == 1 || c.in_chans == 3, "--in-chans must be 1 or 3, got ", c.in_chans);
  if (!request.name.empty()) {
    c.name = request.name;
  } else {
    c.name = "vit_d" + std::to_string(c.embed_dim) + "x" + std::to_string(c.depth) + "_patch" +
             std::to_string(c.patch_size) + "_" + std::to_string(c.img_size);
  }
  return c;
}

// Mean and standard deviation of the training pixels per channel, in [0, 1], accumulated over
// chunks so that a large image folder is not copied whole into float64.
void measure_stats(const ImageDataset& data, EvalTransform& eval) {
  const int64_t channels = data.images.size(1);
  at::Tensor sum = at::zeros({channels}, at::kDouble), squares = at::zeros({channels}, at::kDouble);
  for (int64_t begin = 0; begin < data.size(); begin += 1024) {
    const at::Tensor x = data.images.narrow(0, begin, std::min<int64_t>(1024, data.size() - begin)).to(at::kDouble);
    sum += x.sum({0, 2, 3});
    squares += x.square().sum({0, 2, 3});
  }
  const double count = static_cast<double>(data.images.numel() / channels);
  const at::Tensor mean = sum / count;
  const at::Tensor std = (squares / count - mean.square()).clamp_min(0).sqrt();
  for (int64_t c = 0; c < 3; ++c) {
    const int64_t i = std::min<int64_t>(c, channels - 1);  // gray: one value for the three slots
    eval.mean[c] = static_cast<float>(mean[i].item<double>() / 255);
    eval.std[c] = static_cast<float>(std[i].item<double>() / 255);
  }
}

// The normalisation the user gave (--mean and --std, each 1 or 3 values), or none: measure it.
std::optional<std::pair<std::vector<double>, std::vector<double>>> given_normalisation(const TrainTaskEntry& task,
                                                                                      const std::string& options) {
  const std::vector<double> mean = task_numbers(task, options, "mean");
  const std::vector<double> std = task_numbers(task, options, "std");
  SPARSESCOPE_CHECK(mean.empty() == std.empty(), "--mean and --std go together");
  if (mean.empty()) return std::nullopt;
  for (const auto* values : {&mean, &std}) {
    SPARSESCOPE_CHECK(values->size() == 1 || values->size() == 3, values == &mean ? "--mean" : "--std",
                      " takes 1 or 3 values, got ", values->size());
  }
  for (const double s : std) SPARSESCOPE_CHECK(s > 0, "--std must be positive, got ", s);
  return std::pair{mean, std};
}

TrainResult run_classify(const TrainRequest& request, const TrainCallbacks& callbacks) {
  const TrainTaskEntry& task = train_task(kClassifyTask);
  ViTConfig config = build_config(task, request, parse_dataset_spec(request.dataset).fashion_mnist);
  const auto normalisation = given_normalisation(task, request.options);
  ClassificationData data = load_classification_data(task, request, config, {}, callbacks);
  if (normalisation) {
    const auto& [mean, std] = *normalisation;
    for (size_t c = 0; c < 3; ++c) {
      config.eval.mean[c] = static_cast<float>(mean[std::min(c, mean.size() - 1)]);
      config.eval.std[c] = static_cast<float>(std[std::min(c, std.size() - 1)]);
    }
  } else {
    measure_stats(data.train, config.eval);
  }
  TrainResult result = train_classifier(config, data.train, data.eval ? &*data.eval : nullptr, data.recipe, callbacks);
  result.model_name = config.name;
  result.failures = data.failures();
  return result;
}

}  // namespace

std::vector<OptionDoc> classification_recipe_options() {
  return {{"label_smoothing", "0.1", "label smoothing of the cross-entropy"},
          {"random_erasing", "0", "RandomErasing probability"},
          {"no_flip", "false", "no horizontal flips"},
          {"pad", "-1", "random shift up to N pixels (-1: 4 for fashion-mnist, 0 for folders)"},
          {"crop_scale", "[]", "RandomResizedCrop area range MIN MAX (default: 0.08 1 for folders, off for fashion-mnist)"}};
}

std::vector<std::pair<std::string, std::string>> LabelledSplits::failures() const {
  std::vector<std::pair<std::string, std::string>> all = train.failures;
  if (eval) all.insert(all.end(), eval->failures.begin(), eval->failures.end());
  return all;
}

ClassificationData load_classification_data(const TrainTaskEntry& task, const TrainRequest& request,
                                            ViTConfig& config, const std::vector<std::string>& classes,
                                            const TrainCallbacks& callbacks) {
  const DatasetSpec spec = parse_dataset_spec(request.dataset);
  const std::string& o = request.options;
  ClassificationData d;
  TrainOptions& t = d.recipe;
  static_cast<TrainRecipe&>(t) = request.recipe;
  t.label_smoothing = task_number(task, o, "label_smoothing");
  SPARSESCOPE_CHECK(t.label_smoothing >= 0 && t.label_smoothing < 1, "--label-smoothing must be in [0, 1), got ",
                    t.label_smoothing);
  t.augment.erase_prob = task_number(task, o, "random_erasing");
  SPARSESCOPE_CHECK(t.augment.erase_prob >= 0 && t.augment.erase_prob <= 1, "--random-erasing must be in [0, 1], got ",
                    t.augment.erase_prob);
  t.augment.hflip = !task_bool(task, o, "no_flip");
  const double pad = task_number(task, o, "pad");
  SPARSESCOPE_CHECK(pad >= -1 && pad == static_cast<double>(static_cast<int64_t>(pad)),
                    "--pad must be a whole number of pixels (-1: the dataset's default), got ", pad);
  t.augment.pad = pad >= 0 ? static_cast<int64_t>(pad) : (spec.fashion_mnist ? 4 : 0);
  const std::vector<double> scale = task_numbers(task, o, "crop_scale");
  if (!scale.empty()) {
    SPARSESCOPE_CHECK(scale.size() == 2 && scale[0] > 0 && scale[0] <= scale[1] && scale[1] <= 1,
                      "--crop-scale takes MIN MAX with 0 < MIN <= MAX <= 1");
    t.augment.scale_min = scale[0];
    t.augment.scale_max = scale[1];
  } else if (!spec.fashion_mnist) {
    t.augment.scale_min = 0.08;  // timm's RandomResizedCrop default
  }

  static_cast<LabelledSplits&>(d) = load_labelled_splits(request, config, classes, "training " + config.name, callbacks);
  return d;
}

LabelledSplits load_labelled_splits(const TrainRequest& request, ViTConfig& config,
                                    const std::vector<std::string>& classes, const std::string& what,
                                    const TrainCallbacks& callbacks) {
  const DatasetSpec spec = parse_dataset_spec(request.dataset);
  LabelledSplits d;
  d.train = load_dataset(spec, Split::Train, config, classes, request.limit_train);
  config.num_classes = static_cast<int64_t>(d.train.classes.size());
  if (!request.eval_dataset.empty()) {
    d.eval = load_dataset(parse_dataset_spec(request.eval_dataset), Split::Test, config, d.train.classes,
                          request.limit_eval);
  } else if (has_split(spec, Split::Test)) {
    d.eval = load_dataset(spec, Split::Test, config, d.train.classes, request.limit_eval);
  }
  if (callbacks.on_note) {
    for (const auto& [file, reason] : d.failures()) callbacks.on_note("skipped: " + file + ": " + reason);
    callbacks.on_note(what + " on " + std::to_string(d.train.size()) + " images of " + d.train.source + " (" +
                      std::to_string(config.num_classes) + " classes)" +
                      (d.eval ? ", evaluating on " + std::to_string(d.eval->size()) + " of " + d.eval->source
                              : std::string(", no held-out split to evaluate on")));
  }
  return d;
}

namespace detail {

void register_classify_task() {
  std::vector<OptionDoc> options = kModelOptions;
  const std::vector<OptionDoc> recipe = classification_recipe_options();
  options.insert(options.end(), recipe.begin(), recipe.end());
  register_train_task({kClassifyTask,
                       "image classification from scratch on labelled images (fashion-mnist or an image folder): "
                       "a ViT from --model with these overrides, timm's recipe (AdamW, warmup + cosine, label "
                       "smoothing, crop/flip/erasing augmentation)",
                       options, run_classify});
}

}  // namespace detail

}  // namespace sparsescope::vision
