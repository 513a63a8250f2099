#include "model_options.h"

#include <ATen/Context.h>

#include <CLI/CLI.hpp>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_method.h"
#include "sparsescope/vision/model_card.h"

namespace sparsescope::cli {

void add_model_options(CLI::App& cmd, ModelOptions& options) {
  options.weights = default_weights();
  cmd.add_option("--model", options.name,
                 "Model name (timm's, e.g. vit_small_patch16_224); default: the model card in the weights");
  cmd.add_option("--weights", options.weights, "Weights: safetensors or .pth with timm's parameter names")
      ->capture_default_str();
  cmd.add_option("--method", options.method, "Attention method (default: the one the weights were trained for)")
      ->check(CLI::IsMember({"dense", "sparsifiner"}));
  cmd.add_option("--device", options.device, "Where to run")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd.add_option("--dtype", options.dtype, "Compute dtype")->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
}

const char* default_weights() { return SPARSESCOPE_DEFAULT_WEIGHTS; }

LoadedModel load_model(const ModelOptions& options) {
  LoadedModel loaded;
  loaded.dtype = options.dtype == "fp16" ? at::kHalf : options.dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  if (options.device == "cuda") {
    SPARSESCOPE_CHECK(at::hasCUDA(), "--device cuda: no CUDA device is available on this machine");
    loaded.device = at::Device(at::kCUDA);
  }
  if (!options.name.empty()) {
    try {
      vision::vit_config(options.name);
    } catch (const sparsescope::Error& e) {
      SPARSESCOPE_FAIL("--model: ", e.what());
    }
  }
  try {
    auto vit = vision::load_vit(options.weights, options.name);
    loaded.model = std::move(vit.model);
    loaded.classes = std::move(vit.classes);
  } catch (const sparsescope::Error& e) {
    SPARSESCOPE_FAIL("--weights: ", e.what());
  }
  loaded.name = loaded.model->config().name;
  loaded.method = options.method.empty() ? vision::default_attention_method(loaded.model->config()) : options.method;
  try {
    vision::use_attention_method(loaded.model, loaded.method);
  } catch (const sparsescope::Error& e) {
    SPARSESCOPE_FAIL("--method: ", e.what());
  }
  loaded.model->eval();
  loaded.model->to(loaded.device, loaded.dtype);
  return loaded;
}

}  // namespace sparsescope::cli
