// sparsescope train: runs a training task of the registry (train_task.h; classify by default, a ViT
// classifier from scratch) on the training loop; writes OUT/model.safetensors (weights with the
// model card, ready for `sparsescope infer|eval --weights`), OUT/checkpoint.safetensors and OUT/log.json.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "number_checks.h"
#include "batch.h"
#include "commands.h"
#include "progress.h"
#include "step_profiler.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/precision.h"
#include "sparsescope/vision/train_task.h"

namespace sparsescope::cli {

namespace {

namespace sv = vision;

struct TrainCommandOptions {
  sv::TrainRequest request;
  std::string precision = "fp32";
  std::string save_dtype = "fp32";
  bool json = false;
  int64_t profile_steps = 0;
  std::string task = sv::kClassifyTask;
  std::map<std::string, std::vector<std::string>> task_values;  // option name -> the flag's values as typed
  std::map<std::string, CLI::Option*> task_flags;  // option name -> its flag (shared by the tasks that take it)
  // The recipe options a task may default differently (TrainTaskEntry::recipe_defaults): each
  // flag and how it copies its field from the task's defaults when not given.
  std::vector<std::pair<CLI::Option*, std::function<void(sv::TrainRecipe&, const sv::TrainRecipe&)>>> recipe_flags;
};

template <typename T>
CLI::Option* recipe_option(CLI::App& cmd, TrainCommandOptions& o, const std::string& flag, T sv::TrainRecipe::*field,
                           const std::string& help) {
  CLI::Option* option = cmd.add_option(flag, o.request.recipe.*field, help);
  o.recipe_flags.emplace_back(option, [field](sv::TrainRecipe& to, const sv::TrainRecipe& from) { to.*field = from.*field; });
  return option;
}

std::string flag_of(const std::string& option) {
  std::string flag = "--" + option;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

// `text` as a JSON number, an integer where `fallback` is one.
nlohmann::json number_of(const std::string& option, const std::string& text, const nlohmann::json& fallback) {
  const nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  SPARSESCOPE_CHECK(value.is_number(), flag_of(option), ": expected a number, got '", text, "'");
  SPARSESCOPE_CHECK(!fallback.is_number_integer() || value.is_number_integer(), flag_of(option),
                    ": expected an integer, got '", text, "'");
  return value;
}

// The task's options the user gave, typed as their defaults are; a flag of another task is a usage error.
std::string task_options(const TrainCommandOptions& o, const sv::TrainTaskEntry& task) {
  nlohmann::json given = nlohmann::json::object();
  for (const auto& [name, flag] : o.task_flags) {
    if (flag->count() == 0) continue;
    const auto doc = std::find_if(task.options.begin(), task.options.end(),
                                  [&name = name](const sv::OptionDoc& d) { return d.name == name; });
    SPARSESCOPE_CHECK(doc != task.options.end(), flag_of(name), " is not an option of --task ", task.name);
    const nlohmann::json fallback = nlohmann::json::parse(doc->default_json);
    if (fallback.is_boolean()) {
      given[name] = true;
      continue;
    }
    const std::vector<std::string>& values = o.task_values.at(name);
    if (fallback.is_string()) {
      given[name] = values.front();
    } else if (fallback.is_array()) {
      given[name] = nlohmann::json::array();
      for (const std::string& text : values) given[name].push_back(number_of(name, text, 0.0));
    } else {
      given[name] = number_of(name, values.front(), fallback);
    }
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
  const sv::TrainTaskEntry& task = sv::train_task(o.task);
  sv::TrainRequest& request = o.request;
  request.options = task_options(o, task);
  request.recipe.precision = sv::parse_precision(o.precision);
  request.recipe.save_dtype = o.save_dtype == "fp16" ? at::kHalf : o.save_dtype == "bf16" ? at::kBFloat16 : at::kFloat;

  std::unique_ptr<ProgressBar> bar;
  sv::TrainCallbacks callbacks;
  callbacks.on_epoch_start = [&](int64_t epoch, int64_t steps) {
    bar = std::make_unique<ProgressBar>("epoch " + std::to_string(epoch), static_cast<size_t>(steps));
  };
  callbacks.on_step = [&] { bar->advance(); };
  std::unique_ptr<StepProfiler> profiler;
  if (o.profile_steps > 0) {
    profiler = std::make_unique<StepProfiler>((std::filesystem::path(request.recipe.out) / "profile.trace.json").string(),
                                              o.profile_steps, request.recipe.device.rfind("cuda", 0) == 0);
    callbacks.on_epoch_start = [&, start = callbacks.on_epoch_start](int64_t epoch, int64_t steps) {
      start(epoch, steps);
      profiler->epoch_start(steps);
    };
    callbacks.on_step = [&, step = callbacks.on_step] {
      step();
      profiler->step_done();
    };
  }
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
    result = task.run(request, callbacks);
  } catch (const Error&) {
    throw;  // a usage error: exit status 2
  } catch (const std::exception& e) {  // failures while training (out of memory, device errors, a full disk)
    bar.reset();
    std::cerr << "sparsescope train: " << error_text(e) << "\n";
    return 1;
  }

  nlohmann::json failures = nlohmann::json::array();
  for (const auto& [file, reason] : result.failures) failures.push_back({{"input", file}, {"error", reason}});
  nlohmann::json summary = {{"model", result.model_path},   {"name", result.model_name},
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
  auto* cmd = app.add_subcommand("train", "Train a model: a ViT classifier from scratch (--task classify) or a method's training task");
  cmd->footer(
      "Examples:\n"
      "  sparsescope train --dataset fashion-mnist --patch-size 4 --embed-dim 192 --depth 9 --num-heads 3 --out run/\n"
      "  sparsescope train --dataset photos/ --img-size 64 --patch-size 8 --device cuda --amp bf16 --out run/\n"
      "  sparsescope train ... --out run/ --resume          # continue an interrupted run exactly\n"
      "  sparsescope train --task NAME [its options] --dataset ... --out run/   # a method's training task\n"
      "Tasks and their options: `sparsescope methods` (each option is a flag here, '_' written '-'); a task may change\n"
      "the recipe's defaults (its description says which).\n"
      "Classification datasets: 'fashion-mnist' (Debian's dataset-fashion-mnist), 'fashion-mnist:DIR' (its IDX files, .gz or not),\n"
      "or an image folder DIR/<class>/<image> (with DIR/train and DIR/val or DIR/test when present).\n"
      "Writes OUT/model.safetensors (timm names; the model card in its metadata), OUT/checkpoint.safetensors\n"
      "and OUT/log.json after every epoch. Exit status 1 if some images could not be read (they are skipped).");
  sv::TrainRequest& r = opt->request;
  sv::TrainRecipe& t = r.recipe;
  cmd->add_option("--dataset", r.dataset, "The task's training data, e.g. fashion-mnist, fashion-mnist:DIR, or an image folder")
      ->required();
  cmd->add_option("--out", t.out, "Output folder")->required();
  cmd->add_option("--eval-dataset", r.eval_dataset, "Held-out data (default: the dataset's test split)");
  cmd->add_option("--limit-train", r.limit_train, "Use the first N training examples")->check(kNonNegative);
  cmd->add_option("--limit-eval", r.limit_eval, "Use the first N evaluation examples")->check(kNonNegative);
  cmd->add_option("--model", r.model, "The model's named configuration (classify: a timm name, default vit_tiny_patch16_224)");
  cmd->add_option("--name", r.name, "Name of the trained model (default from its shape)");
  cmd->option_defaults()->always_capture_default();  // the recipe's defaults show in --help
  recipe_option(*cmd, *opt, "--epochs", &sv::TrainRecipe::epochs, "Epochs")->check(kPositive);
  recipe_option(*cmd, *opt, "--batch", &sv::TrainRecipe::batch, "Examples per step")->check(kPositive);
  recipe_option(*cmd, *opt, "--lr", &sv::TrainRecipe::lr, "Peak learning rate")->check(kPositive);
  recipe_option(*cmd, *opt, "--min-lr", &sv::TrainRecipe::min_lr, "Final learning rate of the cosine")->check(kNonNegative);
  recipe_option(*cmd, *opt, "--lr-milestones", &sv::TrainRecipe::lr_milestones,
                "Multi-step decay instead of the cosine: fractions of the run at which the rate is multiplied by --lr-gamma")
      ->delimiter(',');
  recipe_option(*cmd, *opt, "--lr-gamma", &sv::TrainRecipe::lr_gamma, "Factor of the multi-step decay")->check(kPositive);
  recipe_option(*cmd, *opt, "--warmup-lr", &sv::TrainRecipe::warmup_lr, "First warmup learning rate")->check(kNonNegative);
  recipe_option(*cmd, *opt, "--warmup-epochs", &sv::TrainRecipe::warmup_epochs,
                "Warmup epochs (by default at most --epochs - 1)")->check(kNonNegative);
  recipe_option(*cmd, *opt, "--weight-decay", &sv::TrainRecipe::weight_decay, "AdamW weight decay")->check(kNonNegative);
  recipe_option(*cmd, *opt, "--clip-grad", &sv::TrainRecipe::clip_grad, "Max gradient norm, 0 = off")->check(kNonNegative);
  cmd->add_option("--device", t.device, "cpu, cuda or cuda:N");
  cmd->add_option("--amp", opt->precision, "Mixed precision of the forward pass")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  cmd->add_flag("--tf32", t.tf32, "Allow TF32 matmuls on CUDA");
  cmd->add_flag("--cuda-graph", t.cuda_graph,
                "After 3 eager steps, replay the training step as one CUDA graph (tasks whose step allows it)");
  cmd->add_option("--seed", t.seed, "Seed of initialisation, data order and augmentation");
  recipe_option(*cmd, *opt, "--eval-batch", &sv::TrainRecipe::eval_batch, "Examples per evaluation step")->check(kPositive);
  cmd->add_option("--save-dtype", opt->save_dtype, "dtype of OUT/model.safetensors")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  cmd->add_flag("--resume", t.resume, "Continue OUT/checkpoint.safetensors");
  cmd->add_option("--stop-after", t.stop_after, "Stop after epoch N (resume later)")->check(kPositive);
  cmd->add_option("--stop-after-seconds", t.stop_after_seconds,
                  "Stop after the last epoch that fits in this many seconds, the plan unchanged (a chunk; resume later)")
      ->check(kPositive);
  cmd->add_option("--time-budget", t.time_budget, "Seconds: after epoch 2, train fewer epochs to fit (1 when the first epoch spends it all)")
      ->check(kPositive);
  cmd->add_option("--task,--method", opt->task, "What to train (`sparsescope methods` lists the tasks and their options)")
      ->check(CLI::IsMember(sv::train_task_names()));
  cmd->option_defaults()->always_capture_default(false);
  for (const std::string& name : sv::train_task_names()) {  // each task's options, a flag each, typed by its default
    for (const sv::OptionDoc& doc : sv::train_task(name).options) {
      if (opt->task_flags.count(doc.name)) continue;  // taken by an earlier task too
      const std::string help = "--task " + name + ": " + doc.help + " (default " + doc.default_json + ")";
      const nlohmann::json fallback = nlohmann::json::parse(doc.default_json);
      CLI::Option* flag = fallback.is_boolean()
                              ? cmd->add_flag(flag_of(doc.name), help)
                              : cmd->add_option(flag_of(doc.name), opt->task_values[doc.name], help);
      if (fallback.is_array()) {
        flag->expected(1, CLI::detail::expected_max_vector_size)->type_name("NUMBER");
      } else if (!fallback.is_boolean()) {
        flag->expected(1)->type_name(fallback.is_string() ? "TEXT" : "NUMBER");
      }
      opt->task_flags[doc.name] = flag;
    }
  }
  cmd->add_flag("--json", opt->json, "Print the summary as JSON on stdout");
  cmd->add_option("--profile-steps", opt->profile_steps,
                  "Profile the last N steps of the first epoch (PyTorch's profiler): OUT/profile.trace.json and a summary")
      ->check(kNonNegative);
  return [opt, cmd] {
    sv::TrainRecipe& recipe = opt->request.recipe;
    recipe.command = command_line(*cmd);
    const sv::TrainTaskEntry& task = sv::train_task(opt->task);
    if (task.recipe_defaults) {
      sv::TrainRecipe defaults;
      task.recipe_defaults(defaults);
      for (const auto& [flag, take] : opt->recipe_flags) {
        if (flag->count() == 0) take(recipe, defaults);
      }
    }
    // The default must not make short runs fail; log.json records the warmup that ran.
    if (cmd->get_option("--warmup-epochs")->count() == 0 && recipe.warmup_epochs >= static_cast<double>(recipe.epochs)) {
      recipe.warmup_epochs = static_cast<double>(recipe.epochs - 1);
    }
    return run_train(*opt);
  };
}

}  // namespace sparsescope::cli
