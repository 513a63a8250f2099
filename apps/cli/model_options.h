#pragma once
// The flags that pick and load a model (--model, --weights, --method, --device, --dtype), shared by the
// commands that run one; the loading itself is vision::load_model.
#include "sparsescope/vision/model_spec.h"

namespace CLI {
class App;
}

namespace sparsescope::cli {

void add_model_options(CLI::App& cmd, vision::ModelSpec& options);

/// The bundled default classifier (assets/models/vit_fmnist.safetensors in the source tree).
const char* default_weights();

}  // namespace sparsescope::cli
