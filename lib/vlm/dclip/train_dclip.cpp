// DCLIP's two training stages as tasks of the training loop (train_loop.h), as upstream runs them:
//   dclip-teacher  (training/train_contrastive_teacher.py) trains the cross-modal attention over
//                  the frozen CLIP's region and token features, InfoNCE (0.05) between its global
//                  embedding and CLIP's text features; Adam 1e-5, constant, batch 64, 5 epochs.
//   dclip          (training/CLIP_image_distill_training.py, CLIP_image_distillation.py) fine-tunes
//                  CLIP, the image tower's attention projections, visual.proj and the whole text
//                  side trainable (upstream's "proj" filter on the vision model), with
//                  cos(s_img, teacher) + cos(s_txt, CLIP's text features) + InfoNCE(s_img, s_txt, 0.05);
//                  AdamW 2e-5 with decay 0.01, constant, gradient norm 0.5, batch 32.
// An epoch is one pass over the images, each with one of its captions drawn at random (upstream's
// MultiModalDataset). The frozen CLIP and teacher run once, before training.
#include <ATen/ATen.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "inputs.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/seeded.h"
#include "sparsescope/vision/train_optim.h"
#include "sparsescope/vision/train_task.h"
#include "sparsescope/vision/vit_input.h"
#include "sparsescope/vlm/clip_eval.h"
#include "sparsescope/vlm/clip_vocab.h"
#include "sparsescope/vlm/dclip.h"

namespace sparsescope::vlm {

namespace {

using nlohmann::json;
namespace sv = vision;

constexpr const char* kTeacherTask = "dclip-teacher";
constexpr const char* kStudentTask = "dclip";

std::vector<std::vector<int64_t>> captions_of(const ImageTextPairs& pairs) {
  std::vector<std::vector<int64_t>> of(pairs.image_files.size());
  for (size_t t = 0; t < pairs.caption_image.size(); ++t) of[static_cast<size_t>(pairs.caption_image[t])].push_back(static_cast<int64_t>(t));
  return of;
}

json summary(const ImageTextPairs& p) {
  return {{"source", p.source}, {"images", p.image_files.size()}, {"captions", p.captions.size()}};
}

// Images with a drawn caption: the teacher's inputs and target, the student's pixels and ids.
class DclipBatches : public sv::BatchSource {
 public:
  DclipBatches(const ImageTextPairs& pairs, detail::DclipInputs inputs, const sv::EvalTransform& transform, at::Device device)
      : source_(pairs.source), captions_of_(captions_of(pairs)), in_(std::move(inputs)), transform_(transform),
        device_(device) {
    in_.ids = in_.ids.to(device);
    if (in_.teacher.defined()) pixels_ = pairs.images.to(device);
  }
  int64_t size() const override { return static_cast<int64_t>(captions_of_.size()); }
  std::string source() const override { return source_; }
  sv::Batch batch(const at::Tensor& index, at::Generator* gen) const override {
    const at::Tensor images = index.to(device_, at::kLong, /*non_blocking=*/true);  // pinned by the loop
    const at::Tensor captions = detail::pick_captions(index, captions_of_, gen, device_);
    sv::Batch b;
    b.size = images.size(0);
    b.tensors["target"] = in_.text.index_select(0, captions);
    if (in_.teacher.defined()) {  // the student's
      b.tensors["images"] = sv::normalize_pixels(pixels_.index_select(0, images), transform_);
      b.tensors["ids"] = in_.ids.index_select(0, captions);
      b.tensors["teacher"] = in_.teacher.index_select(0, captions);
    } else {  // the teacher's
      b.tensors["text"] = in_.tokens.index_select(0, captions);
      b.tensors["text_valid"] = in_.token_valid.index_select(0, captions);
      b.tensors["regions"] = in_.regions.index_select(0, images);
      b.tensors["region_valid"] = in_.region_valid.index_select(0, images);
    }
    return b;
  }

 private:
  std::string source_;
  std::vector<std::vector<int64_t>> captions_of_;
  detail::DclipInputs in_;
  at::Tensor pixels_;
  sv::EvalTransform transform_;
  at::Device device_;
};

struct Loaded {
  ClipTokenizer tokenizer;
  CLIP clip{nullptr};  // frozen, on the training device
  ImageTextPairs train;
  std::optional<ImageTextPairs> eval;
};

Loaded load_common(const sv::TrainTaskEntry& task, const sv::TrainRequest& request, const sv::TrainCallbacks& callbacks) {
  const std::string clip_path = sv::task_string(task, request.options, "clip");
  SPARSESCOPE_CHECK(!clip_path.empty(), "--clip: give the CLIP weights DCLIP starts from (sparsescope train --task clip)");
  Loaded l{ClipTokenizer(clip_vocab_path(sv::task_string(task, request.options, "vocab"))), CLIP{nullptr}, {}, {}};
  try {
    l.clip = load_clip(clip_path, request.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--clip: ", e.what());
  }
  l.clip->to(sv::training_device(request.recipe.device));
  for (auto& p : l.clip->parameters()) p.set_requires_grad(false);
  const sv::EvalTransform geometry = clip_eval_transform(l.clip->config());
  auto load = [&](const std::string& path, int64_t limit, const char* flag) {
    try {
      ImageTextPairs p = load_image_text_pairs(path, geometry, limit, "filepath", "title", "boxes");
      if (callbacks.on_note) {
        for (const auto& [file, reason] : p.failures) callbacks.on_note("skipped " + file + ": " + reason);
        int64_t regions = 0;
        for (const auto& r : p.regions) regions += r.size(0);
        callbacks.on_note(std::string(flag) + " " + std::to_string(p.captions.size()) + " captions of " +
                          std::to_string(p.image_files.size()) + " images with " + std::to_string(regions) +
                          " regions from " + path);
      }
      return p;
    } catch (const Error& e) {
      SPARSESCOPE_FAIL(flag, ": ", e.what());
    }
  };
  SPARSESCOPE_CHECK(!request.dataset.empty(), "--dataset: give image-text pairs with a boxes column");
  l.train = load(request.dataset, request.limit_train, "--dataset");
  if (!request.eval_dataset.empty()) l.eval = load(request.eval_dataset, request.limit_eval, "--eval-dataset");
  return l;
}

class TeacherTask : public sv::TrainTask {
 public:
  TeacherTask(Loaded& l, const DclipTeacherConfig& config, const sv::TrainRequest& request)
      : config_(config), device_(sv::training_device(request.recipe.device)),
        data_(l.train, detail::dclip_inputs(l.clip, l.tokenizer, l.train, request.recipe.eval_batch), {}, device_) {
    if (l.eval) eval_.emplace(*l.eval, detail::dclip_inputs(l.clip, l.tokenizer, *l.eval, request.recipe.eval_batch), sv::EvalTransform{}, device_);
    sv::run_seeded(request.recipe.seed, [&] { teacher_ = DclipTeacher(config); });
    fingerprint_ = {{"teacher", json::parse(dclip_teacher_config_json(config))},
                    {"clip", sv::task_string(sv::train_task(kTeacherTask), request.options, "clip")},
                    {"train_data", summary(l.train)},
                    {"eval_data", l.eval ? summary(*l.eval) : json(nullptr)}};
  }
  std::string fingerprint() const override { return fingerprint_.dump(); }
  torch::nn::Module& module() override { return *teacher_; }
  const sv::BatchSource& data() const override { return data_; }
  sv::StepResult step(const sv::Batch& b) override {
    const at::Tensor loss = loss_of(b);
    return {loss, {}};
  }
  sv::Metrics evaluate(const sv::TrainRecipe& recipe) override {
    if (!eval_) return {};
    at::NoGradGuard no_grad;
    const bool was = teacher_->is_training();
    teacher_->eval();
    // Each held-out image with its first caption, in batches as training sees them.
    double sum = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < eval_->size(); i += recipe.batch) {
      const at::Tensor index = at::arange(i, std::min(eval_->size(), i + recipe.batch), at::kLong);
      const sv::Batch b = eval_->batch(index, nullptr);
      sum += loss_of(b).item<double>() * static_cast<double>(b.size);
      n += b.size;
    }
    teacher_->train(was);
    return {{"loss", sum / static_cast<double>(n)}};
  }
  std::string eval_source() const override { return eval_ ? eval_->source() : ""; }
  std::map<std::string, std::string> model_metadata() const override {
    return {{kDclipTeacherCardKey, dclip_teacher_config_json(config_)}};
  }

 private:
  at::Tensor loss_of(const sv::Batch& b) {
    const DclipTeacherOutput out = teacher_->forward(b.at("text"), b.at("regions"), b.at("text_valid"), b.at("region_valid"));
    return dclip_contrastive_loss(out.global.to(at::kFloat), b.at("target"));
  }
  DclipTeacherConfig config_;
  at::Device device_;
  DclipTeacher teacher_{nullptr};
  DclipBatches data_;
  std::optional<DclipBatches> eval_;
  json fingerprint_;
};

sv::TrainResult run_teacher(const sv::TrainRequest& request, const sv::TrainCallbacks& callbacks) {
  const sv::TrainTaskEntry& task = sv::train_task(kTeacherTask);
  Loaded l = load_common(task, request, callbacks);
  DclipTeacherConfig config;
  config.embed_dim = l.clip->config().embed_dim;
  config.heads = static_cast<int64_t>(sv::task_number(task, request.options, "heads"));
  SPARSESCOPE_CHECK(config.heads > 0 && config.embed_dim % config.heads == 0, "--heads ", config.heads,
                    " must divide CLIP's embedding width ", config.embed_dim);
  TeacherTask teacher(l, config, request);
  sv::TrainResult result = sv::train(teacher, request.recipe, callbacks);
  result.model_name = request.name.empty() ? "dclip_teacher" : request.name;
  result.failures = l.train.failures;
  if (l.eval) result.failures.insert(result.failures.end(), l.eval->failures.begin(), l.eval->failures.end());
  return result;
}

// Upstream freezes vision_model parameters without "proj" in their name (HF: q/k/v/out_proj of
// every attention); visual_projection and the text side train (logit_scale too, but no loss reaches
// it). In open_clip's names:
bool student_trains(const std::string& name) {
  if (name == "logit_scale") return false;
  if (name.rfind("visual.", 0) != 0) return true;  // the text side
  return name == "visual.proj" || name.find(".attn.in_proj_") != std::string::npos ||
         name.find(".attn.out_proj.") != std::string::npos;
}

class StudentTask : public sv::TrainTask {
 public:
  StudentTask(Loaded& l, DclipTeacher& teacher, std::optional<ZeroShotSet> zero_shot, const sv::TrainRequest& request)
      : tokenizer_(l.tokenizer), eval_(l.eval), zero_shot_(std::move(zero_shot)),
        data_(l.train, targets(l, teacher, l.train, request.recipe.eval_batch), clip_eval_transform(l.clip->config()),
              sv::training_device(request.recipe.device)) {
    student_ = load_clip(sv::task_string(sv::train_task(kStudentTask), request.options, "clip"), request.model);
    student_->train();
    fingerprint_ = {{"clip", sv::task_string(sv::train_task(kStudentTask), request.options, "clip")},
                    {"teacher", sv::task_string(sv::train_task(kStudentTask), request.options, "teacher")},
                    {"train_data", summary(l.train)},
                    {"eval_data", l.eval ? summary(*l.eval) : json(nullptr)}};
  }
  std::string fingerprint() const override { return fingerprint_.dump(); }
  torch::nn::Module& module() override { return *student_; }
  bool trains(const std::string& name) const override { return student_trains(name); }
  // torch's AdamW(self.parameters(), lr): decay 0.01 on every trained parameter.
  sv::ParamGroups param_groups(double lr, double weight_decay) override {
    return sv::weight_decay_groups(*student_, lr, weight_decay, [](const std::string&, const at::Tensor&) { return true; });
  }
  const sv::BatchSource& data() const override { return data_; }
  sv::StepResult step(const sv::Batch& b) override {
    const at::Tensor image = student_->encode_image(b.at("images")).to(at::kFloat);
    const at::Tensor text = student_->encode_text(b.at("ids")).to(at::kFloat);
    const at::Tensor distill_image = dclip_cosine_loss(image, b.at("teacher"));
    const at::Tensor distill_text = dclip_cosine_loss(text, b.at("target"));
    const at::Tensor contrastive = dclip_contrastive_loss(image, text);
    const double n = static_cast<double>(b.size);
    return {distill_image + distill_text + contrastive,
            {{"cos_image", distill_image.detach().to(at::kDouble) * n},
             {"cos_text", distill_text.detach().to(at::kDouble) * n},
             {"contrastive", contrastive.detach().to(at::kDouble) * n}}};
  }
  sv::Metrics train_metrics(const std::map<std::string, double>& sums, int64_t examples) const override {
    sv::Metrics m;
    for (const auto& [k, v] : sums) m[k] = v / static_cast<double>(examples);
    return m;
  }
  sv::Metrics evaluate(const sv::TrainRecipe& recipe) override {
    sv::Metrics m;
    const bool was = student_->is_training();
    student_->eval();
    if (eval_) {
      m = retrieval_metric_map(clip_retrieval(student_, tokenizer_, *eval_, recipe.eval_batch));
    }
    if (zero_shot_) {
      m["zero_shot_top1"] = clip_zero_shot_top1(student_, tokenizer_, zero_shot_->data.images, zero_shot_->data.labels,
                                                zero_shot_->classnames, cifar10_templates(), recipe.eval_batch);
    }
    student_->train(was);
    return m;
  }
  std::string eval_source() const override { return eval_ ? eval_->source : ""; }
  std::map<std::string, std::string> model_metadata() const override {
    return {{kClipCardKey, clip_config_json(student_->config())}};
  }

 private:
  // The teacher's global embedding of every (image, caption) pair, and CLIP's text features.
  static detail::DclipInputs targets(Loaded& l, DclipTeacher& teacher, const ImageTextPairs& pairs, int64_t batch) {
    detail::DclipInputs in = detail::dclip_inputs(l.clip, l.tokenizer, pairs, batch);
    at::NoGradGuard no_grad;
    const at::Tensor owner = at::tensor(pairs.caption_image, at::kLong).to(in.regions.device());
    std::vector<at::Tensor> global;
    for (int64_t t = 0; t < in.tokens.size(0); t += batch) {
      const at::Tensor images = owner.slice(0, t, t + batch);
      global.push_back(teacher
                           ->forward(in.tokens.slice(0, t, t + batch), in.regions.index_select(0, images),
                                     in.token_valid.slice(0, t, t + batch), in.region_valid.index_select(0, images))
                           .global.to(at::kFloat));
    }
    in.teacher = at::cat(global);
    return in;
  }
  const ClipTokenizer& tokenizer_;
  std::optional<ImageTextPairs> eval_;
  std::optional<ZeroShotSet> zero_shot_;
  DclipBatches data_;
  CLIP student_{nullptr};
  json fingerprint_;
};

sv::TrainResult run_student(const sv::TrainRequest& request, const sv::TrainCallbacks& callbacks) {
  const sv::TrainTaskEntry& task = sv::train_task(kStudentTask);
  Loaded l = load_common(task, request, callbacks);
  const std::string teacher_path = sv::task_string(task, request.options, "teacher");
  SPARSESCOPE_CHECK(!teacher_path.empty(), "--teacher: give the DCLIP teacher (sparsescope train --task dclip-teacher)");
  DclipTeacher teacher{nullptr};
  try {
    teacher = load_dclip_teacher(teacher_path);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--teacher: ", e.what());
  }
  SPARSESCOPE_CHECK(teacher->config().embed_dim == l.clip->config().embed_dim, "--teacher: its width ",
                    teacher->config().embed_dim, " is not CLIP's embedding width ", l.clip->config().embed_dim);
  teacher->to(l.clip->logit_scale().device());
  std::optional<ZeroShotSet> zero_shot;
  const std::string zero_shot_dir = sv::task_string(task, request.options, "zero_shot");
  if (!zero_shot_dir.empty()) {
    try {
      zero_shot = load_zero_shot_set(zero_shot_dir, clip_eval_transform(l.clip->config()));
    } catch (const Error& e) {
      SPARSESCOPE_FAIL("--zero-shot: ", e.what());
    }
  }
  StudentTask student(l, teacher, std::move(zero_shot), request);
  sv::TrainResult result = sv::train(student, request.recipe, callbacks);
  result.model_name = request.name.empty() ? l.clip->config().name + "_dclip" : request.name;
  result.failures = l.train.failures;
  if (l.eval) result.failures.insert(result.failures.end(), l.eval->failures.begin(), l.eval->failures.end());
  return result;
}

const std::vector<sv::OptionDoc> kCommonOptions = {
    {"clip", "\"\"", "the CLIP weights DCLIP starts from (a card, or an open_clip file with --model)"},
    {"vocab", "\"\"", "bpe_simple_vocab_16e6.txt.gz (default: $SPARSESCOPE_CLIP_VOCAB or ../shared/data/clip)"}};

}  // namespace

namespace detail {

void register_dclip_tasks() {
  auto teacher_options = kCommonOptions;
  teacher_options.push_back({"heads", "8", "heads of the cross-modal attention"});
  sv::register_train_task(
      {kTeacherTask,
       "DCLIP's teacher as its official code trains it: cross-modal attention between the frozen CLIP's region and "
       "token features, InfoNCE (0.05) against CLIP's text features. --clip the CLIP weights, --dataset / "
       "--eval-dataset image-text pairs with a boxes column. Recipe defaults for this task: --lr 1e-5 --min-lr 1e-5 "
       "--weight-decay 0 --clip-grad 0 --warmup-epochs 0 --batch 64 --epochs 5",
       teacher_options, [](const sv::TrainRequest& r, const sv::TrainCallbacks& cb) { return run_teacher(r, cb); },
       [](sv::TrainRecipe& recipe) {
         recipe.lr = 1e-5;
         recipe.min_lr = 1e-5;
         recipe.weight_decay = 0;
         recipe.clip_grad = 0;
         recipe.warmup_epochs = 0;
         recipe.batch = 64;
         recipe.epochs = 5;
       }});
  auto student_options = kCommonOptions;
  student_options.push_back({"teacher", "\"\"", "the DCLIP teacher's weights (train --task dclip-teacher)"});
  student_options.push_back({"zero_shot", "\"\"", "a class-folder tree for zero-shot top-1 after every epoch"});
  sv::register_train_task(
      {kStudentTask,
       "DCLIP's student as its official code distils it: CLIP with its image attention projections, visual.proj and "
       "text side trainable, cos to the teacher's and CLIP's embeddings plus InfoNCE (0.05). --clip, --teacher, "
       "--dataset / --eval-dataset pairs with boxes (retrieval R@K), --zero-shot. Recipe defaults for this task: "
       "--lr 2e-5 --min-lr 2e-5 --weight-decay 0.01 --clip-grad 0.5 --warmup-epochs 0 --batch 32 --epochs 2",
       student_options, [](const sv::TrainRequest& r, const sv::TrainCallbacks& cb) { return run_student(r, cb); },
       [](sv::TrainRecipe& recipe) {
         recipe.lr = 2e-5;
         recipe.min_lr = 2e-5;
         recipe.weight_decay = 0.01;
         recipe.clip_grad = 0.5;
         recipe.warmup_epochs = 0;
         recipe.batch = 32;
         recipe.epochs = 2;
       }});
}

}  // namespace detail

}  // namespace sparsescope::vlm
