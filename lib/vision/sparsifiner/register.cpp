// Sparsifiner's registry entries: the attention policy (its predictor in every block) and the
// two-phase training task. Registered through SPARSESCOPE_VISION_METHODS (lib/vision/CMakeLists.txt).
#include <nlohmann/json.hpp>

#include "mask_predictor.h"
#include "options_json.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/sparsifiner.h"
#include "sparsescope/vision/train.h"

namespace sparsescope::vision::detail {

namespace {

using nlohmann::json;

const std::vector<OptionDoc> kPredictorOptions = {
    {"keep_rate", "0.25", "keys kept per query, a fraction of the tokens (the class-token row stays dense)"},
    {"reduce_c", "2", "the predictor works on head_dim / reduce_c channels"},
    {"reduce_n", "6", "and on tokens / reduce_n low-rank key slots"},
    {"basis_threshold", "0.02", "sparse basis: entries of |W_up| at most this are zero"},
    {"basis_topk", "8", "sparse basis: coefficients kept per query"},
};

std::vector<OptionDoc> task_options() {
  std::vector<OptionDoc> docs = {
      {"teacher", "\"\"", "the dense model's weights (with a model card): start and teacher (required)"}};
  docs.insert(docs.end(), kPredictorOptions.begin(), kPredictorOptions.end());
  const SparsifinerTrainOptions d;
  docs.push_back({"reconstruct_epochs", std::to_string(d.reconstruct_epochs), "epochs of phase 1 (predictors only)"});
  docs.push_back({"reconstruct_lr", json(d.reconstruct_lr).dump(), "peak learning rate of phase 1"});
  docs.push_back({"distill_weight", json(d.distill_weight).dump(), "weight of KL(teacher logits || student)"});
  docs.push_back({"token_weight", json(d.token_weight).dump(), "weight of the patch-token MSE to the teacher"});
  const std::vector<OptionDoc> recipe = classification_recipe_options();  // of phase 2
  docs.insert(docs.end(), recipe.begin(), recipe.end());
  return docs;
}

// The task's options (as the user gave them) as SparsifinerTrainOptions; its `finetune` is the caller's.
SparsifinerTrainOptions train_options(const TrainTaskEntry& task, const std::string& options) {
  SparsifinerTrainOptions o;
  o.teacher = task_string(task, options, "teacher");
  SPARSESCOPE_CHECK(!o.teacher.empty(), "training task '", task.name, "' needs --teacher (the dense model's weights)");
  json predictor = json::object();
  for (const auto& doc : kPredictorOptions) {
    const double value = task_number(task, options, doc.name);
    predictor[doc.name] = doc.name == "keep_rate" || doc.name == "basis_threshold" ? json(value)
                                                                                   : json(static_cast<int64_t>(value));
  }
  o.method = sparsifiner_options_from_json(predictor.dump());
  o.reconstruct_epochs = static_cast<int64_t>(task_number(task, options, "reconstruct_epochs"));
  o.reconstruct_lr = task_number(task, options, "reconstruct_lr");
  o.distill_weight = task_number(task, options, "distill_weight");
  o.token_weight = task_number(task, options, "token_weight");
  SPARSESCOPE_CHECK(o.reconstruct_lr > 0 && o.distill_weight >= 0 && o.token_weight >= 0,
                    "--reconstruct-lr must be positive, --distill-weight and --token-weight not negative");
  return o;
}

}  // namespace

void register_sparsifiner() {
  register_attention_policy(
      {kSparsifinerPolicy,
       "Sparsifiner (Wei et al., CVPR 2023): a low-rank connectivity predictor per block keeps the top keys of each "
       "query, run through attend()'s TopK pattern; the class-token row stays dense",
       "mask_predictor", kPredictorOptions,
       [](const std::string& options) { return sparsifiner_options_to_json(sparsifiner_options_from_json(options)); },
       [](const AttentionSiteShape& site, const std::string& options) -> std::shared_ptr<AttentionPolicyImpl> {
         return std::make_shared<MaskPredictorImpl>(site.head_dim, site.num_heads, site.tokens,
                                                    sparsifiner_options_from_json(options));
       }});
  register_train_task(
      {kSparsifinerPolicy,
       "Sparsifiner's two phases from a dense --teacher: the predictors learn to reconstruct its attention, then "
       "the backbone fine-tunes on the sparse attention with distillation (phase 1 in OUT/reconstruct)",
       task_options(),
       [](const TrainRequest& request, const TrainCallbacks& callbacks) {
         const TrainTaskEntry& task = train_task(kSparsifinerPolicy);
         SparsifinerTrainOptions o = train_options(task, request.options);
         SPARSESCOPE_CHECK(request.model.empty() && request.name.empty(),
                           "--model and --name: the student is the --teacher's model, under its name");
         const std::optional<ModelCard> card = read_model_card(o.teacher);
         SPARSESCOPE_CHECK(card.has_value(), "--teacher '", o.teacher, "' carries no model card");
         ViTConfig config = card->config;  // the student keeps the teacher's model, normalisation and classes
         ClassificationData data = load_classification_data(task, request, config, card->classes, callbacks);
         o.finetune = data.recipe;
         const SparsifinerTrainResult both =
             train_sparsifiner(data.train, data.eval ? &*data.eval : nullptr, o, callbacks);
         TrainResult result = both.reconstruct.finished ? both.finetune : both.reconstruct;
         result.model_name = config.name;
         result.failures = data.failures();
         return result;
       }});
}

}  // namespace sparsescope::vision::detail
