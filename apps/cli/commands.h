#pragma once
#include <functional>
#include <map>

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
Command add_sr_command(CLI::App& app);
Command add_clip_command(CLI::App& app);
Command add_dclip_command(CLI::App& app);
Command add_reconstruct_command(CLI::App& app);

/// Parses the command line and runs the chosen command: exit status 2 for usage errors (CLI11's and
/// sparsescope::Error), 1 with one line for anything else a command throws (out of memory...).
int run_program(CLI::App& app, const std::map<CLI::App*, Command>& commands, int argc, char** argv);

}  // namespace sparsescope::cli
