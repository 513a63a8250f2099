#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <thread>

#include "batch.h"
#include "commands.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::cli {

int run_program(CLI::App& app, const std::map<CLI::App*, Command>& commands, int argc, char** argv) {
  const std::string program = app.get_name();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << program << ": " << e.what() << " (see " << program << " --help)\n";
    return 2;
  }
  // LibTorch starts with one intra-op thread on these machines; use every core.
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  try {
    for (auto* sub : app.get_subcommands()) return commands.at(sub)();
  } catch (const Error& e) {
    std::cerr << program << ": " << printable(e.what()) << "\n";
    return 2;
  } catch (const std::exception& e) {  // what no command expected: out of memory, a failing disk
    std::cerr << program << ": " << error_text(e) << "\n";
    return 1;
  }
  return 2;
}

}  // namespace sparsescope::cli
