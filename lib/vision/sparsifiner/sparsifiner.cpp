#include "sparsescope/vision/sparsifiner.h"

#include "mask_predictor.h"
#include "options_json.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

std::optional<SparsifinerOptions> sparsifiner_options(const ViTConfig& config) {
  if (config.attention.policy != kSparsifinerPolicy) return std::nullopt;
  return sparsifiner_options_from_json(config.attention.options);
}

ViTConfig with_sparsifiner(ViTConfig config, const std::optional<SparsifinerOptions>& options) {
  config.attention = options ? AttentionSpec{kSparsifinerPolicy, sparsifiner_options_to_json(*options)} : AttentionSpec{};
  return config;
}

at::Tensor sparsifiner_kept_keys(AttentionPolicyImpl& policy, const at::Tensor& q, const at::Tensor& k) {
  auto* predictor = dynamic_cast<MaskPredictorImpl*>(&policy);
  SPARSESCOPE_CHECK(predictor, "sparsifiner_kept_keys: the policy is not Sparsifiner's");
  return predictor->kept_keys(q, k);
}

void set_sparsifiner_mode(VisionTransformer& model, SparsifinerMode mode) {
  bool found = false;
  for (const auto& module : model->modules(/*include_self=*/false)) {
    if (auto* p = module->as<MaskPredictorImpl>()) {
      p->mode = mode;
      found = true;
    }
  }
  SPARSESCOPE_CHECK(found, model->config().name, " has no Sparsifiner predictors");
}

}  // namespace sparsescope::vision
