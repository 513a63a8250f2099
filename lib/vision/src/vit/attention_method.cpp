#include "sparsescope/vision/attention_method.h"

#include <algorithm>

#include "blocks.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

std::vector<ViTAttentionImpl*> sites(VisionTransformer& model) {
  std::vector<ViTAttentionImpl*> found;
  for (const auto& module : model->modules(/*include_self=*/false)) {
    if (auto* a = module->as<ViTAttentionImpl>()) found.push_back(a);
  }
  return found;
}

}  // namespace

std::vector<std::string> attention_methods(const ViTConfig& config) {
  std::vector<std::string> methods{kDensePolicy};
  if (config.attention.policy != kDensePolicy) methods.push_back(config.attention.policy);
  return methods;
}

std::string default_attention_method(const ViTConfig& config) { return config.attention.policy; }

void use_attention_method(VisionTransformer& model, const std::string& method) {
  const auto methods = attention_methods(model->config());
  if (std::find(methods.begin(), methods.end(), method) == methods.end()) {
    std::string known;
    for (const auto& m : methods) known += (known.empty() ? "" : ", ") + m;
    const auto registered = attention_policy_names();
    const bool is_policy = std::find(registered.begin(), registered.end(), method) != registered.end();
    SPARSESCOPE_FAIL("method '", method, "' is not available for ", model->config().name, " (it runs: ", known,
                     is_policy ? "; '" + method + "' needs weights trained with it" : "", ")");
  }
  for (auto* site : sites(model)) site->run_dense = method != model->config().attention.policy;
}

std::string attention_method(VisionTransformer& model) {
  const auto found = sites(model);
  return found.empty() || found.front()->run_dense ? kDensePolicy : model->config().attention.policy;
}

MhsaFlops mhsa_flops(VisionTransformer& model, bool dense) {
  MhsaFlops f;
  for (auto* site : sites(model)) {
    const AttentionSiteShape& s = site->site();
    const auto d = static_cast<double>(s.head_dim * s.num_heads), n = static_cast<double>(s.tokens);
    f.projections += 4 * n * d * d;
    if (dense || site->run_dense) {
      f.attention += dense_attention_flops(s);
    } else {
      site->policy().count_flops(s, f);
    }
  }
  return f;
}

}  // namespace sparsescope::vision
