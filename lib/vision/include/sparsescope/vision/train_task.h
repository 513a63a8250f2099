#pragma once
// Training tasks (registry.h): what `sparsescope train --task NAME` runs. A task receives the data
// and model as the user named them, the training loop's recipe (train_loop.h) and its own options
// as a JSON object holding the options the user gave (OptionDoc defaults fill the rest); it loads
// its data, builds its model and trains it on the loop.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sparsescope/vision/registry.h"
#include "sparsescope/vision/train_loop.h"

namespace sparsescope::vision {

/// The task that trains a ViT classifier from scratch (train.h).
inline constexpr const char* kClassifyTask = "classify";

/// What `sparsescope train` hands a task.
struct TrainRequest {
  std::string dataset;       ///< the training data as the user named it (the task's format, e.g. datasets.h)
  std::string eval_dataset;  ///< held-out data; empty: the dataset's own held-out split, if any
  int64_t limit_train = 0;   ///< > 0: the first N training examples
  int64_t limit_eval = 0;    ///< > 0: the first N held-out examples
  std::string model;         ///< a named configuration of the task's model family; empty: the task's default
  std::string name;          ///< the trained model's name; empty: the task names it
  TrainRecipe recipe;
  std::string options = "{}";  ///< the task's options, a JSON object
};

struct TrainTaskEntry {
  std::string name;
  std::string description;
  /// Each becomes --<name with '_' as '-'> of `sparsescope train`, typed by its default: a number,
  /// a string, a boolean (a flag) or an array of numbers.
  std::vector<OptionDoc> options;
  /// Trains what `request` asks for; reports skipped inputs in TrainResult::failures and what it
  /// loaded through callbacks.on_note. Throws sparsescope::Error naming the option, file or flag at
  /// fault before anything is written.
  std::function<TrainResult(const TrainRequest& request, const TrainCallbacks& callbacks)> run;
  /// The task's recipe defaults where they differ from TrainRecipe's (its official optimizer and
  /// schedule; say them in `description`): `sparsescope train` applies them to the recipe options
  /// the user did not give. Empty: TrainRecipe's.
  std::function<void(TrainRecipe& recipe)> recipe_defaults = {};
};

void register_train_task(TrainTaskEntry entry);
/// The entry named `name`; throws sparsescope::Error listing the registered ones.
const TrainTaskEntry& train_task(const std::string& name);
std::vector<std::string> train_task_names();

/// The value of option `name` in a task's `options` JSON, or its OptionDoc default; throws
/// sparsescope::Error naming the option when the value has the wrong type.
double task_number(const TrainTaskEntry& task, const std::string& options, const std::string& name);
std::string task_string(const TrainTaskEntry& task, const std::string& options, const std::string& name);
bool task_bool(const TrainTaskEntry& task, const std::string& options, const std::string& name);
std::vector<double> task_numbers(const TrainTaskEntry& task, const std::string& options, const std::string& name);

}  // namespace sparsescope::vision
