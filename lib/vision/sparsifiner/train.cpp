// Sparsifiner's two training phases (official src/main.py and src/losses.py) on train_classifier:
// each phase is one TrainObjective, so both get its checkpoints, resume, logs and evaluation.
// Phase 1 needs no teacher forward: the backbone is the teacher's and stays frozen, so the dense
// attention each block computes is the teacher's attention.
#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>

#include "sparsescope/vision/module_weights.h"
#include "mask_predictor.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/sparsifiner.h"
#include "sparsescope/vision/state_dict.h"

namespace sparsescope::vision {

namespace {

bool is_predictor(const std::string& parameter) { return parameter.find(".mask_predictor.") != std::string::npos; }

// The teacher's weights, with the predictors' freshly initialised parameters added.
void load_teacher_weights(VisionTransformer& model, const std::string& teacher) {
  NamedTensors weights = load_state_dict(teacher);
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
    if (is_predictor(item.key())) weights.emplace_back(item.key(), item.value().detach().clone());
  }
  assign_weights(*model, weights, teacher);
}

at::Tensor reconstruction_loss(VisionTransformer& model) {
  at::Tensor sum;
  int64_t blocks = 0;
  for (const auto& module : model->modules(/*include_self=*/false)) {
    auto* p = module->as<MaskPredictorImpl>();
    if (!p) continue;
    SPARSESCOPE_CHECK(p->reconstruction_loss.defined(), "sparsifiner: a predictor recorded no reconstruction loss");
    sum = sum.defined() ? sum + p->reconstruction_loss : p->reconstruction_loss;
    p->reconstruction_loss = at::Tensor();
    ++blocks;
  }
  return sum / static_cast<double>(blocks);  // summed squared error, averaged over the blocks
}

}  // namespace

SparsifinerTrainResult train_sparsifiner(const ImageDataset& train, const ImageDataset* eval,
                                         const SparsifinerTrainOptions& o, const TrainCallbacks& cb) {
  const std::optional<ModelCard> card = read_model_card(o.teacher);
  SPARSESCOPE_CHECK(card.has_value(), "--teacher '", o.teacher, "' carries no ", kModelCardKey,
                    " metadata (a model trained by `sparsescope train`)");
  SPARSESCOPE_CHECK(!sparsifiner_options(card->config), "--teacher '", o.teacher,
                    "' already has Sparsifiner predictors");
  SPARSESCOPE_CHECK(o.reconstruct_epochs >= 1, "--reconstruct-epochs must be at least 1, got ", o.reconstruct_epochs);
  const ViTConfig config = with_sparsifiner(card->config, o.method);
  MaskPredictor(config.embed_dim / config.num_heads, config.num_heads, config.tokens(), o.method);  // checks the settings
  const std::string teacher = o.teacher;
  SparsifinerTrainResult result;

  TrainOptions reconstruct = o.finetune;
  reconstruct.epochs = o.reconstruct_epochs;
  reconstruct.lr = o.reconstruct_lr;
  reconstruct.min_lr = o.reconstruct_min_lr;
  reconstruct.warmup_lr = 0;
  reconstruct.warmup_epochs = std::min<double>(3, static_cast<double>(o.reconstruct_epochs) - 1);
  reconstruct.time_budget = 0;
  reconstruct.stop_after = 0;
  reconstruct.save_dtype = at::kFloat;  // phase 2 starts from these weights
  reconstruct.out = (std::filesystem::path(o.finetune.out) / "reconstruct").string();
  const double weight = o.reconstruct_weight;
  reconstruct.objective.name = "sparsifiner-reconstruct";
  reconstruct.objective.init = [teacher](VisionTransformer& model) {
    load_teacher_weights(model, teacher);
    set_sparsifiner_mode(model, SparsifinerMode::Reconstruct);
  };
  reconstruct.objective.trains = is_predictor;
  reconstruct.objective.loss = [weight](VisionTransformer& model, const at::Tensor& images, const at::Tensor&,
                                        double, at::Tensor& logits) {
    logits = model->forward(images);
    return weight * reconstruction_loss(model);
  };
  if (cb.on_note) cb.on_note("phase 1 of 2: the predictors learn to reconstruct the teacher's attention");
  result.reconstruct = train_classifier(config, train, eval, reconstruct, cb);
  if (!result.reconstruct.finished) return result;

  VisionTransformer dense = load_vit(teacher).model;
  for (auto& p : dense->parameters()) p.set_requires_grad(false);
  TrainOptions finetune = o.finetune;
  const std::string predictors = result.reconstruct.model_path;
  finetune.objective.name = "sparsifiner-finetune";
  finetune.objective.init = [predictors](VisionTransformer& model) {
    load_vit_weights(model, predictors);
    set_sparsifiner_mode(model, SparsifinerMode::Sparse);
  };
  finetune.objective.trains = [](const std::string& parameter) { return !is_predictor(parameter); };
  const double distill = o.distill_weight, token = o.token_weight;
  const int64_t prefix = config.prefix_tokens();
  finetune.objective.loss = [dense, distill, token, prefix](VisionTransformer& model, const at::Tensor& images,
                                                            const at::Tensor& labels, double smoothing,
                                                            at::Tensor& logits) mutable {
    if (dense->parameters().front().device() != images.device()) dense->to(images.device());
    at::Tensor dense_tokens, dense_logits;
    {
      c10::NoGradGuard no_grad;
      dense_tokens = dense->forward_features(images);
      dense_logits = dense->forward_head(dense_tokens);
    }
    const at::Tensor tokens = model->forward_features(images);
    logits = model->forward_head(tokens);
    const at::Tensor task = at::cross_entropy_loss(logits, labels, {}, at::Reduction::Mean, -100, smoothing);
    const at::Tensor kd = at::kl_div(at::log_softmax(logits.to(at::kFloat), 1),
                                     at::log_softmax(dense_logits.to(at::kFloat), 1), at::Reduction::Sum,
                                     /*log_target=*/true) /
                          static_cast<double>(images.size(0));
    const at::Tensor tok = at::mse_loss(tokens.narrow(1, prefix, tokens.size(1) - prefix).to(at::kFloat),
                                        dense_tokens.narrow(1, prefix, tokens.size(1) - prefix).to(at::kFloat));
    return task + distill * kd + token * tok;
  };
  if (cb.on_note) cb.on_note("phase 2 of 2: the backbone fine-tunes on the sparse attention with distillation");
  result.finetune = train_classifier(config, train, eval, finetune, cb);
  return result;
}

}  // namespace sparsescope::vision
