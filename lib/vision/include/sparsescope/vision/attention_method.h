#pragma once
// The attention methods a ViT-family model can run, picked by name (the CLI's and viewer's --method):
// the policy its config names (registry.h) and, for every model, dense attention.
#include <string>
#include <vector>

#include "sparsescope/vision/attention_policy.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

/// "dense" always, then the model's own policy when it has another one.
std::vector<std::string> attention_methods(const ViTConfig& config);
/// The method a model runs unless told otherwise: the one its weights were trained for.
std::string default_attention_method(const ViTConfig& config);
/// Switches `model` to `method`; throws sparsescope::Error naming it and the available ones.
void use_attention_method(VisionTransformer& model, const std::string& method);
/// The method `model` runs now.
std::string attention_method(VisionTransformer& model);

/// MHSA multiply-adds of one image: with `dense`, or for a model that runs dense attention, dense
/// attention's count; else its policy's (attention over the keys it keeps plus its own work).
MhsaFlops mhsa_flops(VisionTransformer& model, bool dense = false);

/// Mask recall per block: the dense attention mass of `dense` (the teacher) that the keys kept by
/// `model`'s method cover, averaged over the first `images` images of `data`, heads and the queries
/// after the class token. Both models must share the input size; `model` must run a method other
/// than dense. Throws sparsescope::Error naming what does not fit.
std::vector<double> mask_recall(VisionTransformer& model, VisionTransformer& dense, const ImageDataset& data,
                                int64_t images, int64_t batch = 256);

}  // namespace sparsescope::vision
