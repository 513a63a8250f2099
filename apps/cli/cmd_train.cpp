// sparsescope train: trains a ViT-family classifier from scratch on Fashion-MNIST or an image
// folder (lib/vision train.h holds the recipe); writes OUT/model.safetensors (weights with the model
// card, ready for `sparsescope infer|eval --weights`), OUT/checkpoint.safetensors and OUT/log.json.
#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "progress.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/train.h"
#include "sparsescope/vision/train_task.h"

namespace sparsescope::cli {

namespace {

namespace sv = vision;

struct TrainCommandOptions {
  std::string dataset;
  std::string eval_dataset;
  int64_t limit_train = 0;
  int64_t limit_eval = 0;
  std::string base = "vit_tiny_patch16_224";
  std::string name;
  // Architecture overrides of --model (0: keep the base's).
  int64_t img_size = 0, patch_size = 0, in_chans = 0, embed_dim = 0, depth = 0, num_heads = 0;
  double mlp_ratio = 0, crop_pct = 0;
  std::vector<float> mean, std;
  std::vector<double> crop_scale;
  int64_t pad = -1;
  bool no_flip = false;
  std::string precision = "fp32";
  std::string save_dtype = "fp32";
  bool json = false;
  std::string task = sv::kClassifyTask;
  std::map<std::string, std::string> task_values;  // option name -> the flag's value as typed
  std::map<std::string, CLI::Option*> task_flags;  // option name -> its flag (shared by the tasks that take it)
  sv::TrainOptions train;
};

std::string flag_of(const std::string& option) {
  std::string flag = "--" + option;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

// The task's options the user gave, typed as their defaults are; a flag of another task is a usage error.
std::string task_options(const TrainCommandOptions& o, const sv::TrainTaskEntry& task) {
  nlohmann::json given = nlohmann::json::object();
  for (const auto& [name, flag] : o.task_flags) {
    if (flag->count() == 0) continue;
    const auto doc = std::find_if(task.options.begin(), task.options.end(),
                                  [&name = name](const sv::OptionDoc& d) { return d.name == name; });
    SPARSESCOPE_CHECK(doc != task.options.end(), flag_of(name), " is not an option of --task ", task.name);
    const std::string& text = o.task_values.at(name);
    const nlohmann::json fallback = nlohmann::json::parse(doc->default_json);
    if (fallback.is_string()) {
      given[name] = text;
      continue;
    }
    const nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    SPARSESCOPE_CHECK(value.is_number(), flag_of(name), ": expected a number, got '", text, "'");
    SPARSESCOPE_CHECK(!fallback.is_number_integer() || value.is_number_integer(), flag_of(name),
                      ": expected an integer, got '", text, "'");
    given[name] = value;
  }
  return given.dump();
}

// " name value" per metric of the task, in its own units.
std::string metrics_text(const sv::Metrics& metrics) {
  std::ostringstream s;
  s << std::setprecision(4);
  for (const auto& [name, value] : metrics) s << " " << name << " " << value;
  return s.str();
}

// Mean and standard deviation of the training pixels per channel, in [0, 1], accumulated over
// chunks so that a large image folder is not copied whole into float64.
void measure_stats(const sv::ImageDataset& data, sv::EvalTransform& eval) {
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

sv::ViTConfig build_config(const TrainCommandOptions& o, const sv::DatasetSpec& spec) {
  sv::ViTConfig c;
  try {
    c = sv::vit_config(o.base);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--model: ", e.what());
  }
  if (spec.fashion_mnist) {  // the native geometry unless overridden: 28 x 28 gray, no resize
    c.img_size = 28;
    c.in_chans = 1;
    c.eval.crop_pct = 1.0;
  }
  if (o.img_size) c.img_size = o.img_size;
  if (o.patch_size) c.patch_size = o.patch_size;
  if (o.in_chans) c.in_chans = o.in_chans;
  if (o.embed_dim) c.embed_dim = o.embed_dim;
  if (o.depth) c.depth = o.depth;
  if (o.num_heads) c.num_heads = o.num_heads;
  if (o.mlp_ratio > 0) c.mlp_ratio = o.mlp_ratio;
  if (o.crop_pct > 0) c.eval.crop_pct = o.crop_pct;
  c.eval.img_size = static_cast<int>(c.img_size);
  c.distilled = false;
  SPARSESCOPE_CHECK(c.img_size % c.patch_size == 0, "--img-size ", c.img_size, " is not a multiple of --patch-size ",
                    c.patch_size);
  SPARSESCOPE_CHECK(c.embed_dim % c.num_heads == 0, "--embed-dim ", c.embed_dim, " is not a multiple of --num-heads ",
                    c.num_heads);
  SPARSESCOPE_CHECK(c.in_chans == 1 || c.in_chans == 3, "--in-chans must be 1 or 3, got ", c.in_chans);
  std::ostringstream name;
  name << "vit_d" << c.embed_dim << "x" << c.depth << "_patch" << c.patch_size << "_" << c.img_size;
  c.name = o.name.empty() ? name.str() : o.name;
  return c;
}

// The command as typed, rebuilt from what CLI11 parsed, for log.json and the model's metadata.
std::string command_line(const CLI::App& cmd) {
  std::string line = cmd.get_parent()->get_name() + " " + cmd.get_name();
  for (const CLI::Option* option : cmd.get_options()) {
    if (option->count() == 0 || option->get_lnames().empty()) continue;
    line += " --" + option->get_lnames().front();
    if (option->get_expected_max() == 0) continue;  // a flag
    for (const auto& value : option->results()) {
      line += " " + (value.find(' ') == std::string::npos ? value : "'" + value + "'");
    }
  }
  return line;
}

int run_train(TrainCommandOptions& o) {
  const sv::DatasetSpec spec = sv::parse_dataset_spec(o.dataset);
  const sv::TrainTaskEntry& task = sv::train_task(o.task);
  const std::string options = task_options(o, task);
  // A task may derive the model from its options (a teacher's): its config, normalisation and classes.
  const std::optional<sv::ModelCard> card = task.model ? task.model(options) : std::nullopt;
  sv::ViTConfig config = card ? card->config : build_config(o, spec);
  const std::vector<std::string> classes = card ? card->classes : std::vector<std::string>{};
  sv::TrainOptions& t = o.train;
  t.precision = sv::parse_precision(o.precision);
  t.save_dtype = o.save_dtype == "fp16" ? at::kHalf : o.save_dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  t.augment.hflip = !o.no_flip;
  t.augment.pad = o.pad >= 0 ? o.pad : (spec.fashion_mnist ? 4 : 0);
  if (!o.crop_scale.empty()) {
    t.augment.scale_min = o.crop_scale[0];
    t.augment.scale_max = o.crop_scale[1];
  } else if (!spec.fashion_mnist) {
    t.augment.scale_min = 0.08;  // timm's RandomResizedCrop default
  }

  sv::ImageDataset train = sv::load_dataset(spec, sv::Split::Train, config, classes, o.limit_train);
  config.num_classes = static_cast<int64_t>(train.classes.size());
  if (!card && o.mean.empty()) {  // a derived model keeps its normalisation
    measure_stats(train, config.eval);
  } else if (!card) {
    for (int c = 0; c < 3; ++c) {
      config.eval.mean[c] = o.mean[std::min<size_t>(c, o.mean.size() - 1)];
      config.eval.std[c] = o.std[std::min<size_t>(c, o.std.size() - 1)];
    }
  }
  std::unique_ptr<sv::ImageDataset> eval;
  if (!o.eval_dataset.empty()) {
    eval = std::make_unique<sv::ImageDataset>(sv::load_dataset(sv::parse_dataset_spec(o.eval_dataset),
                                                               sv::Split::Test, config, train.classes, o.limit_eval));
  } else if (sv::has_split(spec, sv::Split::Test)) {
    eval = std::make_unique<sv::ImageDataset>(
        sv::load_dataset(spec, sv::Split::Test, config, train.classes, o.limit_eval));
  }
  for (const auto* data : {&train, eval.get()}) {
    if (!data) continue;
    for (const auto& [file, reason] : data->failures) std::cerr << "skipped: " << file << ": " << reason << "\n";
  }
  std::cerr << "training " << config.name << " on " << train.size() << " images of " << train.source << " ("
            << config.num_classes << " classes)"
            << (eval ? ", evaluating on " + std::to_string(eval->size()) + " of " + eval->source
                     : std::string(", no held-out split to evaluate on"))
            << "\n";

  std::unique_ptr<ProgressBar> bar;
  sv::TrainCallbacks callbacks;
  callbacks.on_epoch_start = [&](int64_t epoch, int64_t steps) {
    bar = std::make_unique<ProgressBar>("epoch " + std::to_string(epoch), static_cast<size_t>(steps));
  };
  callbacks.on_step = [&] { bar->advance(); };
  callbacks.on_epoch_end = [&](const sv::EpochRecord& r, int64_t epochs) {
    bar.reset();
    std::ostringstream line;
    line << "epoch " << r.epoch << "/" << epochs << "  lr " << std::scientific << std::setprecision(2) << r.lr
         << std::fixed << "  loss " << std::setprecision(4) << r.train_loss;
    line << "  train" << metrics_text(r.train);
    if (!r.eval.empty()) line << "  eval" << metrics_text(r.eval);
    line << "  " << std::setprecision(1) << r.seconds << " s  " << std::setprecision(0) << r.train_images_per_second
         << " img/s";
    std::cerr << line.str() << "\n";
  };
  callbacks.on_note = [](const std::string& note) { std::cerr << note << "\n"; };

  sv::TrainResult result;
  try {
    result = task.run(config, train, eval.get(), t, options, callbacks);
  } catch (const c10::Error& e) {  // LibTorch failures while training (out of memory, device errors)
    bar.reset();
    std::cerr << "sparsescope train: " << e.what_without_backtrace() << "\n";
    return 1;
  }

  nlohmann::json failures = nlohmann::json::array();
  for (const auto* data : {&train, eval.get()}) {
    if (!data) continue;
    for (const auto& [file, reason] : data->failures) failures.push_back({{"input", file}, {"error", reason}});
  }
  nlohmann::json summary = {{"model", result.model_path},   {"name", config.name},
                            {"epochs", result.epochs.size()}, {"planned_epochs", result.planned_epochs},
                            {"finished", result.finished},   {"failed", failures.size()},
                            {"failures", failures}};
  double seconds = 0;
  for (const auto& r : result.epochs) seconds += r.seconds;
  summary["seconds"] = seconds;
  if (!result.epochs.empty()) {
    for (const auto& [name, value] : result.epochs.back().eval) summary["eval_" + name] = value;
  }
  if (o.json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    std::cerr << (result.finished ? "finished " : "stopped after ") << result.epochs.size() << " of "
              << result.planned_epochs << " epochs; model in " << result.model_path << "\n";
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace

Command add_train_command(CLI::App& app) {
  auto opt = std::make_shared<TrainCommandOptions>();
  auto* cmd = app.add_subcommand("train", "Train a ViT classifier from scratch on Fashion-MNIST or an image folder");
  cmd->footer(
      "Examples:\n"
      "  sparsescope train --dataset fashion-mnist --patch-size 4 --embed-dim 192 --depth 9 --num-heads 3 --out run/\n"
      "  sparsescope train --dataset photos/ --img-size 64 --patch-size 8 --device cuda --amp bf16 --out run/\n"
      "  sparsescope train ... --out run/ --resume          # continue an interrupted run exactly\n"
      "  sparsescope train --task NAME [its options] --dataset ... --out run/   # a method's training task\n"
      "Tasks and their options: `sparsescope methods` (each option is a flag here, '_' written '-').\n"
      "Datasets: 'fashion-mnist' (Debian's dataset-fashion-mnist), 'fashion-mnist:DIR' (its IDX files, .gz or not),\n"
      "or an image folder DIR/<class>/<image> (with DIR/train and DIR/val or DIR/test when present).\n"
      "Writes OUT/model.safetensors (timm names; the model card in its metadata), OUT/checkpoint.safetensors\n"
      "and OUT/log.json after every epoch. Exit status 1 if some images could not be read (they are skipped).");
  cmd->add_option("--dataset", opt->dataset, "fashion-mnist, fashion-mnist:DIR, or an image folder")->required();
  cmd->add_option("--out", opt->train.out, "Output folder")->required();
  cmd->add_option("--eval-dataset", opt->eval_dataset, "Held-out data (default: the dataset's test split)");
  cmd->add_option("--limit-train", opt->limit_train, "Use the first N training images")->check(CLI::NonNegativeNumber);
  cmd->add_option("--limit-eval", opt->limit_eval, "Use the first N evaluation images")->check(CLI::NonNegativeNumber);
  cmd->add_option("--model", opt->base, "Base configuration, a timm name (default vit_tiny_patch16_224)");
  cmd->add_option("--name", opt->name, "Name of the trained model (default from its shape)");
  cmd->add_option("--img-size", opt->img_size, "Input size (fashion-mnist: 28)")->check(CLI::PositiveNumber);
  cmd->add_option("--patch-size", opt->patch_size, "Patch size")->check(CLI::PositiveNumber);
  cmd->add_option("--in-chans", opt->in_chans, "Input channels, 1 or 3 (fashion-mnist: 1)")->check(CLI::Range(1, 3));
  cmd->add_option("--embed-dim", opt->embed_dim, "Embedding width")->check(CLI::PositiveNumber);
  cmd->add_option("--depth", opt->depth, "Blocks")->check(CLI::PositiveNumber);
  cmd->add_option("--num-heads", opt->num_heads, "Attention heads")->check(CLI::PositiveNumber);
  cmd->add_option("--mlp-ratio", opt->mlp_ratio, "MLP width / embedding width")->check(CLI::PositiveNumber);
  cmd->add_option("--crop-pct", opt->crop_pct, "Eval center-crop fraction (fashion-mnist: 1)")->check(CLI::Range(0.05, 1.0));
  auto* mean = cmd->add_option("--mean", opt->mean, "Normalisation mean, 1 or 3 values (default: measured)")
                   ->expected(1, 3);
  cmd->add_option("--std", opt->std, "Normalisation std, 1 or 3 values (default: measured)")->expected(1, 3)->needs(mean);
  mean->needs("--std");
  cmd->add_option("--crop-scale", opt->crop_scale, "RandomResizedCrop area range MIN MAX (folders: 0.08 1; off for fashion-mnist)")
      ->expected(2);
  cmd->add_option("--pad", opt->pad, "Random shift up to N pixels (fashion-mnist: 4, folders: 0)")->check(CLI::NonNegativeNumber);
  cmd->option_defaults()->always_capture_default();  // the recipe's defaults show in --help
  cmd->add_option("--epochs", opt->train.epochs, "Epochs")->check(CLI::PositiveNumber);
  cmd->add_option("--batch", opt->train.batch, "Images per step")->check(CLI::PositiveNumber);
  cmd->add_option("--lr", opt->train.lr, "Peak learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--min-lr", opt->train.min_lr, "Final learning rate")->check(CLI::NonNegativeNumber);
  cmd->add_option("--warmup-lr", opt->train.warmup_lr, "First warmup learning rate")->check(CLI::NonNegativeNumber);
  cmd->add_option("--warmup-epochs", opt->train.warmup_epochs, "Warmup epochs")->check(CLI::NonNegativeNumber);
  cmd->add_option("--weight-decay", opt->train.weight_decay, "AdamW weight decay")->check(CLI::NonNegativeNumber);
  cmd->add_option("--label-smoothing", opt->train.label_smoothing, "Label smoothing")->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--clip-grad", opt->train.clip_grad, "Max gradient norm, 0 = off")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-flip", opt->no_flip, "No horizontal flips");
  cmd->add_option("--random-erasing", opt->train.augment.erase_prob, "RandomErasing probability")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--device", opt->train.device, "cpu, cuda or cuda:N");
  cmd->add_option("--amp", opt->precision, "Mixed precision of the forward pass")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  cmd->add_flag("--tf32", opt->train.tf32, "Allow TF32 matmuls on CUDA");
  cmd->add_option("--seed", opt->train.seed, "Seed of initialisation, data order and augmentation");
  cmd->add_option("--eval-batch", opt->train.eval_batch, "Images per evaluation step")->check(CLI::PositiveNumber);
  cmd->add_option("--save-dtype", opt->save_dtype, "dtype of OUT/model.safetensors")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  cmd->add_flag("--resume", opt->train.resume, "Continue OUT/checkpoint.safetensors");
  cmd->add_option("--stop-after", opt->train.stop_after, "Stop after epoch N (resume later)")->check(CLI::PositiveNumber);
  cmd->add_option("--time-budget", opt->train.time_budget, "Seconds: after epoch 2, train fewer epochs to fit")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--task,--method", opt->task, "What to train (`sparsescope methods` lists the tasks and their options)")
      ->check(CLI::IsMember(sv::train_task_names()));
  for (const std::string& name : sv::train_task_names()) {  // each task's options, a flag each
    for (const sv::OptionDoc& doc : sv::train_task(name).options) {
      if (opt->task_flags.count(doc.name)) continue;  // taken by an earlier task too
      opt->task_flags[doc.name] = cmd->add_option(flag_of(doc.name), opt->task_values[doc.name],
                                                  "--task " + name + ": " + doc.help + " (default " +
                                                      doc.default_json + ")");
    }
  }
  cmd->add_flag("--json", opt->json, "Print the summary as JSON on stdout");
  return [opt, cmd] {
    opt->train.command = command_line(*cmd);
    return run_train(*opt);
  };
}

}  // namespace sparsescope::cli
