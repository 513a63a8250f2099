#pragma once
// The registries that methods plug into (DESIGN.md section 2), LibTorch-free: attention policies
// that a model's attention sites run, model families, training tasks. Each entry has a name, a
// description and options that round-trip through JSON, so that `sparsescope methods`, the viewer,
// model cards and the command line list and store them without naming any method. A method
// registers its entries from its own folder (lib/vision/CMakeLists.txt: SPARSESCOPE_VISION_METHODS);
// applications and tests may register more at run time.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sparsescope/vision/vit_config.h"

namespace sparsescope::vision {

/// The name of the policy every model can run: softmax over every key (attention_policy.h).
inline constexpr const char* kDensePolicy = "dense";

/// One option of a registry entry: its JSON default and what it means (for --help and `methods`).
struct OptionDoc {
  std::string name;
  std::string default_json;
  std::string help;
};

/// What an attention site tells its policy when the model is built.
struct AttentionSiteShape {
  int64_t head_dim = 0;
  int64_t num_heads = 0;
  int64_t tokens = 0;  ///< N: queries and keys of the site (self-attention)
  int64_t prefix = 0;  ///< prefix tokens (class, distillation) before the patch grid
};

class AttentionPolicyImpl;  // attention_policy.h

struct AttentionPolicyEntry {
  std::string name;
  std::string description;
  /// The submodule of the attention module that holds the policy's parameters, as the method's
  /// official checkpoints name it ("mask_predictor"); empty for a policy without parameters.
  std::string module_name;
  std::vector<OptionDoc> options;
  /// The options as a JSON object with every option present (defaults filled in), checked;
  /// throws sparsescope::Error naming the key at fault. "{}" gives the defaults.
  std::function<std::string(const std::string& options)> normalize;
  /// One policy module per attention site, from normalised options.
  std::function<std::shared_ptr<AttentionPolicyImpl>(const AttentionSiteShape& site, const std::string& options)> make;
};

/// Adds `entry`; throws sparsescope::Error when the name is taken or the entry is incomplete.
void register_attention_policy(AttentionPolicyEntry entry);
/// The entry named `name`; throws sparsescope::Error listing the registered ones.
const AttentionPolicyEntry& attention_policy(const std::string& name);
std::vector<std::string> attention_policy_names();
/// {policy, its normalised options}; throws naming the policy or the option at fault.
AttentionSpec attention_spec(const std::string& policy, const std::string& options = "{}");

/// A family of models built from a model card or a named configuration.
struct ModelFamilyEntry {
  std::string name;
  std::string description;
  std::function<std::vector<std::string>()> configs;  ///< the named configurations
};

void register_model_family(ModelFamilyEntry entry);
std::vector<ModelFamilyEntry> model_families();

/// Everything registered, as JSON (`sparsescope methods --json`): {"attention_policies": [...],
/// "models": [...], "tasks": [...]}, each entry with its name, description and options with defaults.
std::string registry_json();

}  // namespace sparsescope::vision
