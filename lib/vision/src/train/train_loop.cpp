// Note [exact resume]
// A resumed run must continue exactly where an uninterrupted one would be. Everything random is
// drawn from CPU generators seeded from (seed, epoch) alone: the initialisation from `seed` (by the
// task, before the loop), each epoch's data order and augmentations from a generator made at the
// epoch's start. Checkpoints are written at epoch ends with the optimizer's moments and steps, the
// loss scale and the task's state, so loading one restores every input of the next epoch.
// tests/vision/test_train.cpp and test_train_loop.cpp check that an interrupted and resumed run
// ends with the same weights as an uninterrupted one.
#include "sparsescope/vision/train_loop.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "adamw_step.h"
#include "autocast.h"
#include "checkpoint.h"
#include "grad_scaler.h"
#include "graphed_step.h"
#include "lars.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/atomic_file.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/output_dir.h"
#include "sparsescope/vision/train_optim.h"

namespace sparsescope::vision {

const at::Tensor& Batch::at(const std::string& name) const {
  const auto it = tensors.find(name);
  if (it != tensors.end()) return it->second;
  std::string names;
  for (const auto& [key, tensor] : tensors) names += (names.empty() ? "" : ", ") + key;
  SPARSESCOPE_FAIL("batch has no tensor '", name, "' (it holds: ", names.empty() ? "nothing" : names, ")");
}

bool TrainTask::trains(const std::string&) const { return true; }

torch::nn::Module& TrainTask::saved_module() { return module(); }

ParamGroups TrainTask::param_groups(double lr, double weight_decay) {
  return weight_decay_groups(module(), lr, weight_decay);
}

void TrainTask::after_step() {}
bool TrainTask::graph_safe() const { return false; }

Metrics TrainTask::train_metrics(const std::map<std::string, double>&, int64_t) const { return {}; }

Metrics TrainTask::evaluate(const TrainRecipe&) { return {}; }

std::string TrainTask::eval_source() const { return {}; }

NamedTensors TrainTask::state() const { return {}; }

void TrainTask::load_state(const NamedTensors& state, const std::string& source) {
  SPARSESCOPE_CHECK(state.empty(), "checkpoint '", source, "' has task state ('", state.front().first,
                    "') that this task does not keep");
}

at::Device training_device(const std::string& name) {
  std::optional<at::Device> device;
  try {
    device = at::Device(name);
  } catch (const c10::Error&) {
    SPARSESCOPE_FAIL("--device: unknown device '", name, "' (cpu, cuda, cuda:N)");
  }
  SPARSESCOPE_CHECK(device->is_cpu() || device->is_cuda(), "--device: '", name, "' is neither cpu nor cuda");
  SPARSESCOPE_CHECK(device->is_cpu() || at::hasCUDA(), "--device ", name, ": no CUDA device on this machine");
  return *device;
}

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kStateKey = "sparsescope.train_state";
constexpr const char* kTrainingKey = "sparsescope.training";
const std::string kTaskState = "task/";

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// What a checkpoint must share with the run that resumes it: the task's entries and the recipe's.
json fingerprint(const TrainTask& task, const TrainRecipe& o) {
  json print = json::parse(task.fingerprint());
  SPARSESCOPE_CHECK(print.is_object(), "training task: its fingerprint is not a JSON object");
  print.update({{"epochs", o.epochs},
                {"batch", o.batch},
                {"lr", o.lr},
                {"min_lr", o.min_lr},
                {"warmup_lr", o.warmup_lr},
                {"warmup_epochs", o.warmup_epochs},
                {"weight_decay", o.weight_decay},
                {"clip_grad", o.clip_grad},
                {"seed", o.seed},
                {"precision_fp16", o.precision == Precision::FP16}});  // the loss scale is part of the state
  if (!o.lr_milestones.empty()) print.update({{"lr_milestones", o.lr_milestones}, {"lr_gamma", o.lr_gamma}});
  return print;
}

// Records as log.json holds them: the task's metrics flattened to "train_<name>" and "eval_<name>".
const std::string kTrain = "train_", kEval = "eval_";

json record_json(const EpochRecord& r) {
  json j = {{"epoch", r.epoch},
            {"lr", r.lr},
            {"train_loss", r.train_loss},
            {"seconds", r.seconds},
            {"train_images_per_second", r.train_images_per_second}};
  for (const auto& [name, value] : r.train) j[kTrain + name] = value;
  for (const auto& [name, value] : r.eval) j[kEval + name] = value;
  if (!r.eval.empty()) j["eval_seconds"] = r.eval_seconds;
  return j;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

EpochRecord record_from_json(const json& j) {
  EpochRecord r;
  r.epoch = j.at("epoch").get<int64_t>();
  r.lr = j.at("lr").get<double>();
  r.train_loss = j.at("train_loss").get<double>();
  r.seconds = j.at("seconds").get<double>();
  r.train_images_per_second = j.at("train_images_per_second").get<double>();
  for (const auto& [key, value] : j.items()) {
    if (key == "train_loss" || key == "train_images_per_second") continue;
    if (key == "eval_seconds") {
      r.eval_seconds = value.get<double>();
      continue;
    }
    if (starts_with(key, kTrain)) r.train[key.substr(kTrain.size())] = value.get<double>();
    if (starts_with(key, kEval)) r.eval[key.substr(kEval.size())] = value.get<double>();
  }
  return r;
}

// The differing top-level entries of two fingerprints, as "key (checkpoint X, now Y)".
std::string differences(const json& saved, const json& now) {
  std::string out;
  for (const auto& [key, value] : now.items()) {
    const json old = saved.contains(key) ? saved.at(key) : json(nullptr);
    if (old != value) out += (out.empty() ? "" : "; ") + key + " (checkpoint " + old.dump() + ", now " + value.dump() + ")";
  }
  return out;
}

void check_recipe(const TrainRecipe& o) {
  SPARSESCOPE_CHECK(!o.out.empty(), "training needs an output folder (--out)");
  SPARSESCOPE_CHECK(o.epochs > 0, "--epochs must be positive, got ", o.epochs);
  SPARSESCOPE_CHECK(o.batch > 0 && o.eval_batch > 0, "--batch must be positive, got ", o.batch);
  SPARSESCOPE_CHECK(o.lr > 0 && o.min_lr >= 0 && o.warmup_lr >= 0, "--lr, --min-lr, --warmup-lr: bad values ", o.lr,
                    ", ", o.min_lr, ", ", o.warmup_lr);
  SPARSESCOPE_CHECK(o.warmup_epochs >= 0 && o.warmup_epochs < static_cast<double>(o.epochs), "--warmup-epochs ",
                    o.warmup_epochs, " must be in [0, --epochs ", o.epochs, ")");
  for (size_t i = 0; i < o.lr_milestones.size(); ++i) {
    SPARSESCOPE_CHECK(o.lr_milestones[i] > 0 && o.lr_milestones[i] < 1 && (i == 0 || o.lr_milestones[i] > o.lr_milestones[i - 1]),
                      "--lr-milestones must be increasing fractions of the run in (0, 1), got ", o.lr_milestones[i]);
  }
  SPARSESCOPE_CHECK(o.lr_gamma > 0, "--lr-gamma must be positive, got ", o.lr_gamma);
  SPARSESCOPE_CHECK(o.stop_after_seconds >= 0, "--stop-after-seconds must not be negative");
  SPARSESCOPE_CHECK(o.weight_decay >= 0 && o.clip_grad >= 0, "--weight-decay, --clip-grad: bad values ",
                    o.weight_decay, ", ", o.clip_grad);
  SPARSESCOPE_CHECK(o.save_dtype == at::kFloat || o.save_dtype == at::kHalf || o.save_dtype == at::kBFloat16,
                    "--save-dtype must be fp32, fp16 or bf16");
}

// A backend of attend() without a backward would leave the attention weights without gradients
// while the rest trains: fail loudly on the first step instead.
void check_gradients(const torch::nn::Module& module) {
  std::string missing;
  int64_t count = 0;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad() || item.value().grad().defined()) continue;
    ++count;
    if (count <= 5) missing += (missing.empty() ? "" : ", ") + item.key();
  }
  SPARSESCOPE_CHECK(count == 0, "training: no gradient reached ", count, " parameters (", missing,
                    count > 5 ? ", ..." : "", "); a forward-only attention backend may have run "
                    "(see sparsescope::backend_choices)");
}

uint64_t epoch_seed(uint64_t seed, int64_t epoch) {
  return seed ^ (static_cast<uint64_t>(epoch + 1) * 0x9e3779b97f4a7c15ull);
}

}  // namespace

TrainResult train(TrainTask& task, const TrainRecipe& o, const TrainCallbacks& cb) {
  check_recipe(o);
  const at::Device device = training_device(o.device);
  if (device.is_cuda() && o.tf32) at::globalContext().setFloat32MatmulPrecision("high");
  // Training batches keep one shape (crops, a fixed input size, the partial batch dropped): cuDNN
  // may time its convolution algorithms once per shape, as the official MAE, LUT and BasicSR training
  // scripts let it.
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
  const OutputDir out_dir(o.out, "--out");  // held until the run ends: a second run into it is refused
  const fs::path& out = out_dir.path();
  const std::string checkpoint_path = (out / "checkpoint.safetensors").string();
  const std::string model_path = (out / "model.safetensors").string();
  const std::string log_path = (out / "log.json").string();
  SPARSESCOPE_CHECK(o.resume || !fs::exists(checkpoint_path), "'", checkpoint_path,
                    "' exists: pass --resume to continue that run, or choose another --out");

  torch::nn::Module& model = task.module();
  model.to(device);
  model.train();
  std::vector<at::Tensor> params;  // the trained ones
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    const bool trains = task.trains(item.key());
    item.value().set_requires_grad(trains);
    if (trains) params.push_back(item.value());
  }
  SPARSESCOPE_CHECK(!params.empty(), "training task: no parameter trains");
  ParamGroups groups = task.param_groups(o.lr, o.weight_decay);
  SPARSESCOPE_CHECK(groups.lr_scales.size() == groups.groups.size(), "training task: ", groups.groups.size(),
                    " parameter groups but ", groups.lr_scales.size(), " lr scales");
  const std::vector<double> lr_scales = groups.lr_scales;
  std::unique_ptr<torch::optim::Optimizer> optimizer_owner;
  if (groups.optimizer == ParamGroups::Optimizer::Lars) {
    optimizer_owner = std::make_unique<detail::Lars>(groups.groups, detail::LarsOptions(o.lr));
  } else {
    optimizer_owner = std::make_unique<torch::optim::AdamW>(std::move(groups.groups),
                                                            torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  }
  torch::optim::Optimizer& optimizer = *optimizer_owner;
  auto* adamw = dynamic_cast<torch::optim::AdamW*>(&optimizer);  // stepped by the fused kernel
  std::optional<detail::GradScaler> scaler;
  if (o.precision == Precision::FP16) scaler.emplace(device);
  if (o.cuda_graph) {
    SPARSESCOPE_CHECK(task.graph_safe(), "--cuda-graph: this task's training step cannot be captured as a CUDA "
                      "graph (it draws or copies from the host inside the step); train without the flag");
    SPARSESCOPE_CHECK(device.is_cuda(), "--cuda-graph needs a CUDA device (--device cuda), not ", device);
    SPARSESCOPE_CHECK(adamw, "--cuda-graph: only AdamW steps are captured, not this task's optimizer (LARS)");
  }
  std::unique_ptr<detail::GraphedStep> graphed;  // made after kEagerSteps eager steps

  const BatchSource& data = task.data();
  const int64_t n = data.size();
  SPARSESCOPE_CHECK(n > 0, "dataset '", data.source(), "' is empty");
  const int64_t batch = std::min(o.batch, n);
  const int64_t steps = n / batch;  // the last partial batch is dropped, as timm's loader does
  LrSchedule schedule{o.lr, o.min_lr, o.warmup_lr, std::llround(o.warmup_epochs * static_cast<double>(steps)),
                      o.epochs * steps, o.lr_milestones, o.lr_gamma};
  const auto card_metadata = task.model_metadata();
  const auto card_it = card_metadata.find(kModelCardKey);
  const json card = card_it == card_metadata.end() ? json(nullptr) : json::parse(card_it->second);
  const json print = fingerprint(task, o);

  TrainResult result;
  result.model_path = model_path;
  result.planned_epochs = o.epochs;
  int64_t start_epoch = 0;
  if (o.resume && fs::exists(checkpoint_path)) {
    const SafetensorsFile file = load_safetensors(checkpoint_path);
    const auto it = file.metadata.find(kStateKey);
    SPARSESCOPE_CHECK(it != file.metadata.end(), "--resume: '", checkpoint_path, "' holds no ", kStateKey,
                      " metadata (not a training checkpoint)");
    const json state = json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    SPARSESCOPE_CHECK(!state.is_discarded() && state.contains("fingerprint") && state.contains("records"),
                      "--resume: '", checkpoint_path, "' has malformed ", kStateKey, " metadata");
    const std::string diff = differences(state.at("fingerprint"), print);
    SPARSESCOPE_CHECK(diff.empty(), "--resume: '", checkpoint_path, "' comes from a different run: ", diff);
    NamedTensors loop_state, task_state;
    for (const auto& [name, tensor] : file.tensors) {
      if (starts_with(name, kTaskState)) {
        task_state.emplace_back(name.substr(kTaskState.size()), tensor);
      } else {
        loop_state.emplace_back(name, tensor);
      }
    }
    detail::restore_checkpoint(loop_state, model, optimizer, scaler ? &*scaler : nullptr, checkpoint_path);
    task.load_state(task_state, checkpoint_path);
    try {
      SPARSESCOPE_CHECK(state.at("records").is_array(), "records is not a list");
      for (const auto& r : state.at("records")) result.epochs.push_back(record_from_json(r));
      result.planned_epochs = state.at("planned_epochs").get<int64_t>();
    } catch (const json::exception& e) {
      SPARSESCOPE_FAIL("--resume: '", checkpoint_path, "' has malformed ", kStateKey, " metadata: ", e.what());
    } catch (const Error& e) {
      SPARSESCOPE_FAIL("--resume: '", checkpoint_path, "' has malformed ", kStateKey, " metadata: ", e.what());
    }
    start_epoch = static_cast<int64_t>(result.epochs.size());
    SPARSESCOPE_CHECK(result.planned_epochs >= 1 && start_epoch <= result.planned_epochs, "--resume: '",
                      checkpoint_path, "' has malformed ", kStateKey, " metadata: ", start_epoch,
                      " epochs recorded of ", result.planned_epochs, " planned");
    for (int64_t e = 0; e < start_epoch; ++e) {
      SPARSESCOPE_CHECK(result.epochs[e].epoch == e + 1, "--resume: '", checkpoint_path, "' has malformed ", kStateKey,
                        " metadata: record ", e + 1, " is of epoch ", result.epochs[e].epoch);
    }
    if (cb.on_note) cb.on_note("resuming after epoch " + std::to_string(start_epoch) + " of " +
                                std::to_string(result.planned_epochs) + " from " + checkpoint_path);
  }
  schedule.total_steps = result.planned_epochs * steps;

  auto save = [&](bool finished) {
    const int64_t done = static_cast<int64_t>(result.epochs.size());
    json records = json::array();
    for (const auto& r : result.epochs) records.push_back(record_json(r));
    const json state = {{"fingerprint", print}, {"records", records}, {"planned_epochs", result.planned_epochs}};
    auto metadata = card_metadata;
    metadata[kStateKey] = state.dump();
    NamedTensors tensors = detail::checkpoint_tensors(model, optimizer, scaler ? &*scaler : nullptr);
    for (auto& [name, tensor] : task.state()) tensors.emplace_back(kTaskState + name, tensor);
    save_safetensors(checkpoint_path, tensors, metadata);

    json training = {{"data", data.source()}, {"epochs", done}, {"planned_epochs", result.planned_epochs},
                     {"command", o.command}};
    if (!result.epochs.empty() && !result.epochs.back().eval.empty()) {
      json eval = result.epochs.back().eval;
      eval["data"] = task.eval_source();
      training["eval"] = eval;
    }
    auto model_metadata = card_metadata;
    model_metadata[kTrainingKey] = training.dump();
    NamedTensors weights;
    const torch::nn::Module& saved = task.saved_module();
    for (const auto& item : saved.named_parameters(/*recurse=*/true)) {
      weights.emplace_back(item.key(), item.value().detach().to(at::kCPU, o.save_dtype));
    }
    for (const auto& item : saved.named_buffers(/*recurse=*/true)) {  // BatchNorm statistics; counts stay integers
      const at::Tensor& b = item.value();
      weights.emplace_back(item.key(), b.to(at::kCPU, at::isFloatingType(b.scalar_type()) ? o.save_dtype : b.scalar_type()));
    }
    save_safetensors(model_path, weights, model_metadata);

    json options = print;
    options["device"] = o.device;
    options["precision"] = to_string(o.precision);
    options["tf32"] = o.tf32;
    options["cuda_graph"] = o.cuda_graph;
    options["save_dtype"] = c10::toString(o.save_dtype);
    const json log = {{"command", o.command},   {"model", card},         {"options", options},
                      {"planned_epochs", result.planned_epochs}, {"finished", finished}, {"epochs", records}};
    const std::string text = log.dump(2) + "\n";
    write_file_atomically(log_path, text.data(), text.size());
  };

  bool gradients_checked = false;
  // --cuda-graph captures the step once these have made the optimizer's state, cuDNN's algorithm
  // choices and the autograd graph's first run (torch.cuda.graphs' warm-up).
  constexpr int64_t kEagerSteps = 3;
  int64_t eager_steps = 0;
  const auto run_start = Clock::now();
  const auto sum_options = at::TensorOptions().dtype(at::kDouble).device(device);
  for (int64_t epoch = start_epoch; epoch < result.planned_epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(epoch_seed(o.seed, epoch));
    at::Tensor order = at::randperm(n, gen, at::kLong);  // on the host: sources that pick on the host
    if (device.is_cuda()) order = order.pin_memory();      // (SR's crops) need not wait for the device
    if (cb.on_epoch_start) cb.on_epoch_start(epoch + 1, steps);
    at::Tensor loss_sum = at::zeros({}, sum_options);
    std::map<std::string, at::Tensor> sums;
    double lr = 0;
    for (int64_t step = 0; step < steps; ++step) {
      lr = schedule.at(epoch * steps + step);
      for (size_t g = 0; g < lr_scales.size(); ++g) optimizer.param_groups()[g].options().set_lr(lr * lr_scales[g]);
      const Batch b = data.batch(order.narrow(0, step * batch, batch), &gen);
      StepResult r;
      if (o.cuda_graph && eager_steps >= kEagerSteps) {
        if (!graphed) {
          graphed = std::make_unique<detail::GraphedStep>(task, params, *adamw, scaler ? &*scaler : nullptr,
                                                          o.clip_grad, o.precision, device);
        }
        std::vector<double> lrs;
        for (const double scale : lr_scales) lrs.push_back(lr * scale);
        r = graphed->run(b, lrs);
      } else {
        {
          detail::AutocastGuard autocast(device.type(), o.precision);
          r = task.step(b);
        }
        optimizer.zero_grad();
        (scaler ? scaler->scale(r.loss) : r.loss).backward();
        if (!gradients_checked) {
          check_gradients(model);
          gradients_checked = true;
        }
        if (scaler) scaler->unscale(params);
        if (o.clip_grad > 0) clip_grad_norm(params, o.clip_grad);
        if (!scaler || scaler->gradients_finite()) {
          if (adamw) {
            detail::adamw_step(*adamw);
          } else {
            optimizer.step();
          }
        }
        if (scaler) scaler->update();
        ++eager_steps;
      }
      task.after_step();
      loss_sum += r.loss.detach().to(at::kDouble);
      for (const auto& [name, value] : r.sums) {
        const at::Tensor v = value.detach().to(at::kDouble);
        auto it = sums.find(name);
        if (it == sums.end()) {
          sums.emplace(name, v.clone());
        } else {
          it->second += v;
        }
      }
      if (cb.on_step) cb.on_step();
    }
    EpochRecord record;
    record.epoch = epoch + 1;
    record.lr = lr;
    record.train_loss = loss_sum.item<double>() / static_cast<double>(steps);  // waits for the device
    std::map<std::string, double> host_sums;
    for (const auto& [name, value] : sums) host_sums[name] = value.item<double>();
    record.train = task.train_metrics(host_sums, steps * batch);
    record.train_images_per_second = static_cast<double>(steps * batch) / seconds_since(epoch_start);
    const auto eval_start = Clock::now();
    record.eval = task.evaluate(o);
    record.eval_seconds = seconds_since(eval_start);
    record.seconds = seconds_since(epoch_start);
    result.epochs.push_back(record);

    // Lowering the epoch count after epoch 2 (normally inside the warmup) leaves the schedule as if
    // the lower count had been asked for. The pace is the wall time of both epochs (the first one's
    // start-up and checkpoint included), which errs on the slow side: epoch times vary by 20% on a
    // GPU host.
    // A budget the first epoch alone spends ends the run there.
    if (o.time_budget > 0 && start_epoch == 0 && epoch == 0 && result.planned_epochs > 1 &&
        seconds_since(run_start) >= o.time_budget) {
      result.planned_epochs = 1;
      schedule.total_steps = steps;
      if (cb.on_note) {
        std::ostringstream note;
        note << "time budget " << o.time_budget << " s spent by epoch 1 (" << seconds_since(run_start)
             << " s): training 1 epoch instead of " << o.epochs;
        cb.on_note(note.str());
      }
    }
    if (o.time_budget > 0 && start_epoch == 0 && epoch == 1 && result.planned_epochs > 2) {
      const double elapsed = seconds_since(run_start);
      const double pace = elapsed / 2;
      const auto fit = static_cast<int64_t>(std::floor((o.time_budget - elapsed) / pace));
      if (2 + fit < result.planned_epochs) {
        result.planned_epochs = std::max<int64_t>(2, 2 + fit);
        schedule.total_steps = result.planned_epochs * steps;
        if (cb.on_note) {
          std::ostringstream note;
          note << "time budget " << o.time_budget << " s at " << pace << " s per epoch: training "
               << result.planned_epochs << " epochs instead of " << o.epochs;
          cb.on_note(note.str());
        }
      }
    }
    // A chunk ends when another epoch at this one's pace would overrun it.
    const bool stopping = (o.stop_after > 0 && epoch + 1 >= o.stop_after) ||
                          (o.stop_after_seconds > 0 && seconds_since(run_start) + record.seconds > o.stop_after_seconds);
    result.finished = epoch + 1 == result.planned_epochs;
    if (graphed) graphed->sync_optimizer_state();
    save(result.finished);
    if (cb.on_epoch_end) cb.on_epoch_end(record, result.planned_epochs);
    if (stopping) break;
  }
  result.finished = static_cast<int64_t>(result.epochs.size()) == result.planned_epochs;
  return result;
}

}  // namespace sparsescope::vision
