#pragma once
// The flags that pick and load a model (--model, --weights, --method, --device, --dtype), shared by the
// commands that run one.
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "sparsescope/vision/vit.h"

namespace CLI {
class App;
}

namespace sparsescope::cli {

struct ModelOptions {
  std::string name;
  std::string weights;
  std::string device = "cpu";
  std::string dtype = "fp32";
  std::string method;  // empty: the one the weights were trained for
};

void add_model_options(CLI::App& cmd, ModelOptions& options);

struct LoadedModel {
  vision::VisionTransformer model{nullptr};
  std::string name;                  // the config's name (from --model or the weights' model card)
  std::string method;                // the attention method it runs ("dense", "sparsifiner")
  std::vector<std::string> classes;  // class names from the model card; empty when it has none
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat;
};

/// The bundled default classifier (assets/models/vit_fmnist.safetensors in the source tree).
const char* default_weights();

/// Builds the named model (or the one in the weights' model card when --model is empty), loads its
/// weights, moves it to the device and dtype, eval mode.
/// Throws sparsescope::Error naming the flag at fault (unknown model, unreadable or unfitting
/// weights, no CUDA device).
LoadedModel load_model(const ModelOptions& options);

}  // namespace sparsescope::cli
