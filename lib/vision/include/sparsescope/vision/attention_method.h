#pragma once
// The attention methods a ViT-family model can run, picked by name (the CLI's and viewer's --method).
#include <string>
#include <vector>

#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

/// "dense" always; "sparsifiner" when the model carries Sparsifiner's predictors.
std::vector<std::string> attention_methods(const ViTConfig& config);
/// The method a model runs unless told otherwise: the one its weights were trained for.
std::string default_attention_method(const ViTConfig& config);
/// Switches `model` to `method`; throws sparsescope::Error naming it and the available ones.
void use_attention_method(VisionTransformer& model, const std::string& method);

}  // namespace sparsescope::vision
