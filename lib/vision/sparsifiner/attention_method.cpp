#include "sparsescope/vision/attention_method.h"

#include <algorithm>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/sparsifiner.h"

namespace sparsescope::vision {

std::vector<std::string> attention_methods(const ViTConfig& config) {
  std::vector<std::string> methods{"dense"};
  if (config.sparsifiner) methods.emplace_back("sparsifiner");
  return methods;
}

std::string default_attention_method(const ViTConfig& config) { return config.sparsifiner ? "sparsifiner" : "dense"; }

void use_attention_method(VisionTransformer& model, const std::string& method) {
  const auto methods = attention_methods(model->config());
  if (std::find(methods.begin(), methods.end(), method) == methods.end()) {
    std::string known;
    for (const auto& m : methods) known += (known.empty() ? "" : ", ") + m;
    SPARSESCOPE_FAIL("method '", method, "' is not available for ", model->config().name, " (it runs: ", known,
                     method == "sparsifiner" ? "; Sparsifiner needs weights with its predictors" : "", ")");
  }
  if (model->config().sparsifiner) {
    set_sparsifiner_mode(model, method == "dense" ? SparsifinerMode::Dense : SparsifinerMode::Sparse);
  }
}

}  // namespace sparsescope::vision
