// The entries every build has: dense attention, the ViT family and classification. Methods add
// theirs from their folders (registry.cpp, Note [registries]).
#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_policy.h"
#include "sparsescope/vision/train_task.h"

namespace sparsescope::vision {

namespace {

class DensePolicyImpl : public AttentionPolicyImpl {
 public:
  at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, Probe* probe) override {
    return sparsescope::attend(q, k, v, Dense{}, probe);
  }
  void count_flops(const AttentionSiteShape& site, MhsaFlops& flops) override {
    flops.attention += dense_attention_flops(site);
  }
};

std::string no_options(const std::string& options) {
  const auto j = nlohmann::json::parse(options, nullptr, /*allow_exceptions=*/false);
  SPARSESCOPE_CHECK(j.is_object() && j.empty(), "dense attention takes no options, got ", options);
  return "{}";
}

}  // namespace

double dense_attention_flops(const AttentionSiteShape& site) {
  const auto n = static_cast<double>(site.tokens);
  return 2 * n * n * static_cast<double>(site.head_dim * site.num_heads);
}

namespace detail {

void register_generic_entries() {
  register_attention_policy({kDensePolicy, "softmax attention over every key (attend() with the Dense pattern)", "",
                             {}, no_options,
                             [](const AttentionSiteShape&, const std::string&) {
                               return std::make_shared<DensePolicyImpl>();
                             }});
  register_model_family({"vit", "Vision Transformers with timm's parameter names (ViT, DeiT incl. distilled, DINO)",
                         vit_config_names});
  register_train_task({kClassifyTask,
                       "image classification from scratch: timm's recipe (AdamW, warmup + cosine, label smoothing, "
                       "crop/flip/erasing augmentation)",
                       {},
                       {},
                       [](const ViTConfig& config, const ImageDataset& train, const ImageDataset* eval,
                          const TrainOptions& recipe, const std::string&, const TrainCallbacks& callbacks) {
                         return train_classifier(config, train, eval, recipe, callbacks);
                       }});
}

}  // namespace detail

namespace {

nlohmann::json option_value(const TrainTaskEntry& task, const std::string& options, const std::string& name) {
  const auto j = nlohmann::json::parse(options, nullptr, /*allow_exceptions=*/false);
  SPARSESCOPE_CHECK(j.is_object(), "task '", task.name, "': options are not a JSON object: ", options);
  if (j.contains(name)) return j.at(name);
  for (const auto& o : task.options) {
    if (o.name == name) return nlohmann::json::parse(o.default_json);
  }
  SPARSESCOPE_FAIL("task '", task.name, "' has no option '", name, "'");
}

}  // namespace

double task_number(const TrainTaskEntry& task, const std::string& options, const std::string& name) {
  const auto v = option_value(task, options, name);
  SPARSESCOPE_CHECK(v.is_number(), "task '", task.name, "': option '", name, "' must be a number, got ", v.dump());
  return v.get<double>();
}

std::string task_string(const TrainTaskEntry& task, const std::string& options, const std::string& name) {
  const auto v = option_value(task, options, name);
  SPARSESCOPE_CHECK(v.is_string(), "task '", task.name, "': option '", name, "' must be a string, got ", v.dump());
  return v.get<std::string>();
}

}  // namespace sparsescope::vision
