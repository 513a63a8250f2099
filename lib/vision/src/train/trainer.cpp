// Note [exact resume]
// A resumed run must continue exactly where an uninterrupted one would be. Everything random is
// drawn from CPU generators seeded from (seed, epoch) alone: the initialisation from `seed`, each
// epoch's data order and augmentations from a generator made at the epoch's start. Checkpoints are
// written at epoch ends with the optimizer's moments and steps (and the loss scale), so loading
// one restores every input of the next epoch. tests/vision/test_train.cpp checks that an
// interrupted and resumed run ends with the same weights as an uninterrupted one.
#include "sparsescope/vision/train.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
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
#include "init.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/atomic_file.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/train_optim.h"

namespace sparsescope::vision {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kStateKey = "sparsescope.train_state";
constexpr const char* kTrainingKey = "sparsescope.training";

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

at::Device parse_device(const std::string& name) {
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

json augment_json(const AugmentOptions& a) {
  return {{"scale", {a.scale_min, a.scale_max}}, {"ratio", {a.ratio_min, a.ratio_max}}, {"pad", a.pad},
          {"hflip", a.hflip},                    {"erase_prob", a.erase_prob}};
}

// What a checkpoint must share with the run that resumes it.
json fingerprint(const ViTConfig& config, const ImageDataset& train, const ImageDataset* eval,
                 const TrainOptions& o) {
  return {{"model", json::parse(model_card_metadata({config, train.classes}).at(kModelCardKey))},
          {"train_data", {{"source", train.source}, {"images", train.size()}}},
          {"eval_data", eval ? json{{"source", eval->source}, {"images", eval->size()}} : json(nullptr)},
          {"epochs", o.epochs},
          {"batch", o.batch},
          {"lr", o.lr},
          {"min_lr", o.min_lr},
          {"warmup_lr", o.warmup_lr},
          {"warmup_epochs", o.warmup_epochs},
          {"weight_decay", o.weight_decay},
          {"label_smoothing", o.label_smoothing},
          {"clip_grad", o.clip_grad},
          {"augment", augment_json(o.augment)},
          {"seed", o.seed},
          {"objective", o.objective.name},
          {"precision_fp16", o.precision == Precision::FP16}};  // the loss scale is part of the state
}

json record_json(const EpochRecord& r) {
  json j = {{"epoch", r.epoch},
            {"lr", r.lr},
            {"train_loss", r.train_loss},
            {"train_top1", r.train_top1},
            {"seconds", r.seconds},
            {"train_images_per_second", r.train_images_per_second}};
  if (r.eval) {
    j["eval_loss"] = r.eval->loss;
    j["eval_top1"] = r.eval->top1;
    j["eval_top5"] = r.eval->top5;
    j["eval_images"] = r.eval->images;
    j["eval_seconds"] = r.eval->seconds;
  }
  return j;
}

EpochRecord record_from_json(const json& j) {
  EpochRecord r;
  r.epoch = j.at("epoch").get<int64_t>();
  r.lr = j.at("lr").get<double>();
  r.train_loss = j.at("train_loss").get<double>();
  r.train_top1 = j.at("train_top1").get<double>();
  r.seconds = j.at("seconds").get<double>();
  r.train_images_per_second = j.at("train_images_per_second").get<double>();
  if (j.contains("eval_top1")) {
    EvalResult e;
    e.loss = j.at("eval_loss").get<double>();
    e.top1 = j.at("eval_top1").get<double>();
    e.top5 = j.at("eval_top5").get<double>();
    e.images = j.at("eval_images").get<int64_t>();
    e.seconds = j.at("eval_seconds").get<double>();
    r.eval = e;
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

void check_inputs(const ViTConfig& config, const ImageDataset& train, const ImageDataset* eval, const TrainOptions& o) {
  SPARSESCOPE_CHECK(!o.out.empty(), "training needs an output folder (--out)");
  SPARSESCOPE_CHECK(o.epochs > 0, "--epochs must be positive, got ", o.epochs);
  SPARSESCOPE_CHECK(o.batch > 0 && o.eval_batch > 0, "--batch must be positive, got ", o.batch);
  SPARSESCOPE_CHECK(o.lr > 0 && o.min_lr >= 0 && o.warmup_lr >= 0, "--lr, --min-lr, --warmup-lr: bad values ", o.lr,
                    ", ", o.min_lr, ", ", o.warmup_lr);
  SPARSESCOPE_CHECK(o.warmup_epochs >= 0 && o.warmup_epochs < static_cast<double>(o.epochs), "--warmup-epochs ",
                    o.warmup_epochs, " must be in [0, --epochs ", o.epochs, ")");
  SPARSESCOPE_CHECK(o.weight_decay >= 0 && o.clip_grad >= 0 && o.label_smoothing >= 0 && o.label_smoothing < 1,
                    "--weight-decay, --clip-grad, --label-smoothing: bad values ", o.weight_decay, ", ", o.clip_grad,
                    ", ", o.label_smoothing);
  SPARSESCOPE_CHECK(o.save_dtype == at::kFloat || o.save_dtype == at::kHalf || o.save_dtype == at::kBFloat16,
                    "--save-dtype must be fp32, fp16 or bf16");
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
}

// A backend of attend() without a backward would leave the attention weights without gradients
// while the rest trains: fail loudly on the first step instead.
void check_gradients(VisionTransformer& model) {
  std::string missing;
  int64_t count = 0;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
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

TrainResult train_classifier(const ViTConfig& config, const ImageDataset& train, const ImageDataset* eval,
                             const TrainOptions& o, const TrainCallbacks& cb) {
  check_inputs(config, train, eval, o);
  const at::Device device = parse_device(o.device);
  if (device.is_cuda() && o.tf32) at::globalContext().setFloat32MatmulPrecision("high");
  const fs::path out(o.out);
  fs::create_directories(out);
  const std::string checkpoint_path = (out / "checkpoint.safetensors").string();
  const std::string model_path = (out / "model.safetensors").string();
  const std::string log_path = (out / "log.json").string();
  SPARSESCOPE_CHECK(o.resume || !fs::exists(checkpoint_path), "'", checkpoint_path,
                    "' exists: pass --resume to continue that run, or choose another --out");

  at::Generator init_gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  VisionTransformer model(config);
  detail::init_for_training(model, init_gen);
  if (o.objective.init) o.objective.init(model);
  model->to(device);
  model->train();
  std::vector<at::Tensor> params;  // the trained ones
  for (auto& item : model->named_parameters(/*recurse=*/true)) {
    const bool trains = !o.objective.trains || o.objective.trains(item.key());
    item.value().set_requires_grad(trains);
    if (trains) params.push_back(item.value());
  }
  SPARSESCOPE_CHECK(!params.empty(), "training objective '", o.objective.name, "' trains no parameter");
  torch::optim::AdamW optimizer(weight_decay_groups(*model, o.lr, o.weight_decay),
                                torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  std::optional<detail::GradScaler> scaler;
  if (o.precision == Precision::FP16) scaler.emplace(device);

  const int64_t n = train.size();
  const int64_t batch = std::min(o.batch, n);
  const int64_t steps = n / batch;  // the last partial batch is dropped, as timm's loader does
  WarmupCosine schedule{o.lr, o.min_lr, o.warmup_lr, std::llround(o.warmup_epochs * static_cast<double>(steps)),
                        o.epochs * steps};
  const json card = json::parse(model_card_metadata({config, train.classes}).at(kModelCardKey));
  const json print = fingerprint(config, train, eval, o);

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
    detail::restore_checkpoint(file.tensors, model, optimizer, scaler ? &*scaler : nullptr, checkpoint_path);
    for (const auto& r : state.at("records")) result.epochs.push_back(record_from_json(r));
    start_epoch = static_cast<int64_t>(result.epochs.size());
    result.planned_epochs = state.at("planned_epochs").get<int64_t>();
    if (cb.on_note) cb.on_note("resuming after epoch " + std::to_string(start_epoch) + " of " +
                                std::to_string(result.planned_epochs) + " from " + checkpoint_path);
  }
  schedule.total_steps = result.planned_epochs * steps;

  const at::Tensor images = train.images.to(device);  // uint8 [N, C, S, S]
  const at::Tensor labels = train.labels.to(device);
  const int64_t C = config.in_chans;
  const auto fopts = at::TensorOptions().dtype(at::kFloat).device(device);
  const at::Tensor mean = at::tensor(at::ArrayRef<float>(config.eval.mean.data(), C)).to(fopts).view({1, C, 1, 1});
  const at::Tensor stdev = at::tensor(at::ArrayRef<float>(config.eval.std.data(), C)).to(fopts).view({1, C, 1, 1});

  auto save = [&](bool finished) {
    const int64_t done = static_cast<int64_t>(result.epochs.size());
    json records = json::array();
    for (const auto& r : result.epochs) records.push_back(record_json(r));
    const json state = {{"fingerprint", print}, {"records", records}, {"planned_epochs", result.planned_epochs}};
    auto metadata = model_card_metadata({config, train.classes});
    metadata[kStateKey] = state.dump();
    save_safetensors(checkpoint_path, detail::checkpoint_tensors(model, optimizer, scaler ? &*scaler : nullptr),
                     metadata);

    json training = {{"data", train.source}, {"epochs", done}, {"planned_epochs", result.planned_epochs},
                     {"command", o.command}};
    if (!result.epochs.empty() && result.epochs.back().eval) {
      const EvalResult& e = *result.epochs.back().eval;
      training["eval"] = {{"data", eval->source}, {"top1", e.top1}, {"top5", e.top5}, {"images", e.images}};
    }
    auto model_metadata = model_card_metadata({config, train.classes});
    model_metadata[kTrainingKey] = training.dump();
    NamedTensors weights;
    for (const auto& item : model->named_parameters(/*recurse=*/true)) {
      weights.emplace_back(item.key(), item.value().detach().to(at::kCPU, o.save_dtype));
    }
    save_safetensors(model_path, weights, model_metadata);

    json options = print;
    options["device"] = o.device;
    options["precision"] = to_string(o.precision);
    options["tf32"] = o.tf32;
    options["save_dtype"] = c10::toString(o.save_dtype);
    const json log = {{"command", o.command},   {"model", card},         {"options", options},
                      {"planned_epochs", result.planned_epochs}, {"finished", finished}, {"epochs", records}};
    const std::string text = log.dump(2) + "\n";
    write_file_atomically(log_path, text.data(), text.size());
  };

  bool gradients_checked = false;
  const auto run_start = Clock::now();
  for (int64_t epoch = start_epoch; epoch < result.planned_epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(epoch_seed(o.seed, epoch));
    const at::Tensor order = at::randperm(n, gen, at::kLong).to(device);
    if (cb.on_epoch_start) cb.on_epoch_start(epoch + 1, steps);
    at::Tensor loss_sum = at::zeros({}, fopts.dtype(at::kDouble));
    at::Tensor correct = at::zeros({}, fopts.dtype(at::kLong));
    double lr = 0;
    for (int64_t step = 0; step < steps; ++step) {
      lr = schedule.at(epoch * steps + step);
      for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
      const at::Tensor index = order.narrow(0, step * batch, batch);
      at::Tensor x = augment_geometry(images.index_select(0, index).to(at::kFloat).div_(255), o.augment, gen);
      x = x.sub_(mean).div_(stdev);  // normalize_pixels' operations, after the geometric augmentation
      if (o.augment.erase_prob > 0) x = random_erase(x, o.augment.erase_prob, gen);
      const at::Tensor y = labels.index_select(0, index);
      at::Tensor logits, loss;
      {
        detail::AutocastGuard autocast(device.type(), o.precision);
        if (o.objective.loss) {
          loss = o.objective.loss(model, x, y, o.label_smoothing, logits);
        } else {
          logits = model->forward(x);  // [B, classes]
          loss = at::cross_entropy_loss(logits, y, {}, at::Reduction::Mean, -100, o.label_smoothing);
        }
      }
      optimizer.zero_grad();
      (scaler ? scaler->scale(loss) : loss).backward();
      if (!gradients_checked) {
        check_gradients(model);
        gradients_checked = true;
      }
      if (scaler) scaler->unscale(params);
      if (o.clip_grad > 0) clip_grad_norm(params, o.clip_grad);
      if (!scaler || scaler->gradients_finite()) detail::adamw_step(optimizer);
      if (scaler) scaler->update();
      loss_sum += loss.detach().to(at::kDouble);
      correct += logits.detach().argmax(1).eq(y).sum();
      if (cb.on_step) cb.on_step();
    }
    EpochRecord record;
    record.epoch = epoch + 1;
    record.lr = lr;
    record.train_loss = loss_sum.item<double>() / static_cast<double>(steps);  // waits for the device
    record.train_top1 = static_cast<double>(correct.item<int64_t>()) / static_cast<double>(steps * batch);
    record.train_images_per_second = static_cast<double>(steps * batch) / seconds_since(epoch_start);
    if (eval) record.eval = evaluate(model, *eval, {o.eval_batch, o.precision, nullptr});
    record.seconds = seconds_since(epoch_start);
    result.epochs.push_back(record);

    // Lowering the epoch count after epoch 2 (normally inside the warmup) leaves the schedule as if
    // the lower count had been asked for. The pace is the wall time of both epochs (the first one's
    // start-up and checkpoint included), which errs on the slow side: epoch times vary by 20% on a
    // GPU host.
    if (o.time_budget > 0 && start_epoch == 0 && epoch == 1 && result.planned_epochs > 2) {
      const double elapsed = seconds_since(run_start);
      const double pace = elapsed / 2;
      const auto fit = static_cast<int64_t>(std::floor((o.time_budget - elapsed) / pace));
      if (2 + fit < result.planned_epochs) {
        result.planned_epochs = std::max<int64_t>(3, 2 + fit);
        schedule.total_steps = result.planned_epochs * steps;
        if (cb.on_note) {
          std::ostringstream note;
          note << "time budget " << o.time_budget << " s at " << pace << " s per epoch: training "
               << result.planned_epochs << " epochs instead of " << o.epochs;
          cb.on_note(note.str());
        }
      }
    }
    const bool stopping = o.stop_after > 0 && epoch + 1 >= o.stop_after;
    result.finished = epoch + 1 == result.planned_epochs;
    save(result.finished);
    if (cb.on_epoch_end) cb.on_epoch_end(record, result.planned_epochs);
    if (stopping) break;
  }
  result.finished = static_cast<int64_t>(result.epochs.size()) == result.planned_epochs;
  return result;
}

}  // namespace sparsescope::vision
