// sparsescope: batch jobs over files, folders and videos. Exit status: 0 success, 1 when some item
// failed (each reported, none stops the batch), 2 for usage errors (bad flags, unknown names).
#include <CLI/CLI.hpp>
#include <map>

#include "commands.h"
#include "sparsescope/kernels/version.h"
#include "sparsescope/vlm/register.h"

int main(int argc, char** argv) {
  CLI::App app{"sparsescope: sparse attention for vision models, on files, folders and videos", "sparsescope"};
  app.set_version_flag("--version", sparsescope::version() + " (LibTorch " + sparsescope::torch_version() +
                                        (sparsescope::built_with_cuda() ? ", CUDA kernels)" : ", CPU only)"));
  app.require_subcommand(1);
  sparsescope::vlm::register_vlm_methods();
  std::map<CLI::App*, sparsescope::cli::Command> commands;
  auto add = [&](auto&& adder) {
    auto run = adder(app);
    commands[app.get_subcommands({}).back()] = std::move(run);
  };
  add(sparsescope::cli::add_infer_command);
  add(sparsescope::cli::add_preprocess_command);
  add(sparsescope::cli::add_tensors_command);
  add(sparsescope::cli::add_train_command);
  add(sparsescope::cli::add_eval_command);
  add(sparsescope::cli::add_trace_command);
  add(sparsescope::cli::add_methods_command);
  add(sparsescope::cli::add_sr_command);
  add(sparsescope::cli::add_clip_command);
  add(sparsescope::cli::add_dclip_command);
  add(sparsescope::cli::add_reconstruct_command);

  return sparsescope::cli::run_program(app, commands, argc, argv);
}
