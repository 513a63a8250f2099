// The entries every build has: dense attention, the ViT family and classification. Methods add
// theirs from their folders (registry.cpp, Note [registries]).
#include <ATen/ATen.h>

#include <algorithm>
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

void register_classify_task();  // classify_task.cpp

void register_generic_entries() {
  register_attention_policy({kDensePolicy, "softmax attention over every key (attend() with the Dense pattern)", "",
                             {}, no_options,
                             [](const AttentionSiteShape&, const std::string&) {
                               return std::make_shared<DensePolicyImpl>();
                             }});
  register_model_family({"vit", "Vision Transformers with timm's parameter names (ViT, DeiT incl. distilled, DINO)",
                         vit_config_names});
  register_classify_task();
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

bool task_bool(const TrainTaskEntry& task, const std::string& options, const std::string& name) {
  const auto v = option_value(task, options, name);
  SPARSESCOPE_CHECK(v.is_boolean(), "task '", task.name, "': option '", name, "' must be true or false, got ",
                    v.dump());
  return v.get<bool>();
}

std::vector<double> task_numbers(const TrainTaskEntry& task, const std::string& options, const std::string& name) {
  const auto v = option_value(task, options, name);
  const bool numbers = v.is_array() && std::all_of(v.begin(), v.end(), [](const auto& x) { return x.is_number(); });
  SPARSESCOPE_CHECK(numbers, "task '", task.name, "': option '", name, "' must be an array of numbers, got ",
                    v.dump());
  return v.get<std::vector<double>>();
}

}  // namespace sparsescope::vision
