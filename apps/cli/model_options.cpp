#include "model_options.h"

#include <CLI/CLI.hpp>

#include "sparsescope/vision/registry.h"

namespace sparsescope::cli {

void add_model_options(CLI::App& cmd, vision::ModelSpec& options) {
  options.weights = default_weights();
  cmd.add_option("--model", options.name,
                 "Model name (timm's, e.g. vit_small_patch16_224); default: the model card in the weights");
  cmd.add_option("--weights", options.weights, "Weights: safetensors or .pth with timm's parameter names")
      ->capture_default_str();
  cmd.add_option("--method", options.method,
                 "Attention method (default: the one the weights were trained for; `sparsescope methods` lists them)")
      ->check(CLI::IsMember(vision::attention_policy_names()));
  cmd.add_option("--device", options.device, "Where to run")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd.add_option("--dtype", options.dtype, "Compute dtype")->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
}

const char* default_weights() { return SPARSESCOPE_DEFAULT_WEIGHTS; }

}  // namespace sparsescope::cli
