#pragma once
// The flags that pick and load a model (--model, --weights, --device, --dtype), shared by the
// commands that run one.
#include <ATen/core/Tensor.h>

#include <string>

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
};

void add_model_options(CLI::App& cmd, ModelOptions& options);

struct LoadedModel {
  vision::VisionTransformer model{nullptr};
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat;
};

/// Builds the named model, loads its weights, moves it to the device and dtype, eval mode.
/// Throws sparsescope::Error naming the flag at fault (unknown model, unreadable or unfitting
/// weights, no CUDA device).
LoadedModel load_model(const ModelOptions& options);

}  // namespace sparsescope::cli
