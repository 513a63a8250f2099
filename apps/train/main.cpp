// sparsescope-train: the `train` and `eval` commands of sparsescope in a program that needs neither
// OpenCV nor Qt, for machines that build the libraries only (-DSPARSESCOPE_BUILD_APPS=OFF), such as
// the GPU machine that trains the bundled models. Same flags, output and exit status as sparsescope.
#include <CLI/CLI.hpp>
#include <map>

#include "commands.h"
#include "sparsescope/kernels/version.h"
#include "sparsescope/vlm/register.h"

int main(int argc, char** argv) {
  CLI::App app{"sparsescope-train: train and evaluate ViT classifiers (sparsescope's train and eval commands)",
               "sparsescope-train"};
  app.set_version_flag("--version", sparsescope::version() + " (LibTorch " + sparsescope::torch_version() + ")");
  app.require_subcommand(1);
  sparsescope::vlm::register_vlm_methods();
  std::map<CLI::App*, sparsescope::cli::Command> commands;
  for (auto* adder : {&sparsescope::cli::add_train_command, &sparsescope::cli::add_eval_command,
                      &sparsescope::cli::add_methods_command}) {
    auto run = (*adder)(app);
    commands[app.get_subcommands({}).back()] = std::move(run);
  }
  return sparsescope::cli::run_program(app, commands, argc, argv);
}
