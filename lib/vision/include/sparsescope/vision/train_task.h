#pragma once
// Training tasks (registry.h): what `sparsescope train --task NAME` runs. A task receives the
// model the command line describes, the datasets and the recipe (train.h), and its own options as a
// JSON object holding the options the user gave (OptionDoc defaults fill the rest).
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/registry.h"
#include "sparsescope/vision/train.h"

namespace sparsescope::vision {

/// The task that trains a classifier from scratch (train_classifier).
inline constexpr const char* kClassifyTask = "classify";

struct TrainTaskEntry {
  std::string name;
  std::string description;
  std::vector<OptionDoc> options;  ///< each becomes --<name with '_' as '-'> of `sparsescope train`
  /// The model the task trains when it derives it from its options (e.g. from a teacher's model
  /// card: its configuration, normalisation and classes), in place of the command line's model.
  /// Unset, or nullopt: the command line's. Throws sparsescope::Error naming the option at fault.
  std::function<std::optional<ModelCard>(const std::string& options)> model;
  /// Trains `config` (num_classes set from `train`) with `recipe`; `options` as above.
  std::function<TrainResult(const ViTConfig& config, const ImageDataset& train, const ImageDataset* eval,
                            const TrainOptions& recipe, const std::string& options, const TrainCallbacks& callbacks)>
      run;
};

void register_train_task(TrainTaskEntry entry);
/// The entry named `name`; throws sparsescope::Error listing the registered ones.
const TrainTaskEntry& train_task(const std::string& name);
std::vector<std::string> train_task_names();

/// The value of option `name` in a task's `options` JSON, or its OptionDoc default; throws
/// sparsescope::Error naming the option when the value has the wrong type.
double task_number(const TrainTaskEntry& task, const std::string& options, const std::string& name);
std::string task_string(const TrainTaskEntry& task, const std::string& options, const std::string& name);

}  // namespace sparsescope::vision
