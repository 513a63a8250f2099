#pragma once
// A trained model's description, kept in its safetensors `__metadata__` under "sparsescope.model"
// (JSON: the ViTConfig fields with its eval transform, and the class names), so that a weights
// file alone is enough to build, feed and label the model.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

struct ModelCard {
  ViTConfig config;
  std::vector<std::string> classes;  ///< class index -> name; empty when unknown
};

/// The metadata key that holds the card.
inline constexpr const char* kModelCardKey = "sparsescope.model";

/// `card` as safetensors metadata: {kModelCardKey: JSON}.
std::map<std::string, std::string> model_card_metadata(const ModelCard& card);

/// The card in `metadata`, or nullopt when there is none. Throws sparsescope::Error naming
/// `source` when the card is malformed (bad JSON, a missing or mistyped field, or classes that do
/// not match num_classes).
std::optional<ModelCard> parse_model_card(const std::map<std::string, std::string>& metadata,
                                          const std::string& source);

/// The card of a weights file: nullopt for a .pth or a safetensors file without one.
std::optional<ModelCard> read_model_card(const std::string& path);

/// A model with its weights loaded (CPU, float32, eval mode) and its class names.
struct LoadedViT {
  VisionTransformer model{nullptr};
  std::vector<std::string> classes;
};

/// Builds the named configuration, or with `name` empty the one in the card of `weights`, and
/// loads `weights` into it (load_vit_weights). Class names come from the card when it has one.
/// Throws sparsescope::Error when `name` is empty and the file has no card.
LoadedViT load_vit(const std::string& weights, const std::string& name = "");

}  // namespace sparsescope::vision
