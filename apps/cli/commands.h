#pragma once
#include <functional>

namespace CLI {
class App;
}

namespace sparsescope::cli {

/// Each command adds its subcommand to `app` and returns the function that runs it (its exit status).
using Command = std::function<int()>;

Command add_infer_command(CLI::App& app);
Command add_preprocess_command(CLI::App& app);
Command add_tensors_command(CLI::App& app);
Command add_train_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_trace_command(CLI::App& app);
Command add_methods_command(CLI::App& app);

}  // namespace sparsescope::cli
