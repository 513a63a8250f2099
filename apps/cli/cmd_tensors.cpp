// sparsescope tensors FILE: what a weights file holds (safetensors or .pth), before loading a model.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/state_dict.h"

namespace sparsescope::cli {

namespace {
struct TensorsOptions {
  std::string file;
  bool json = false;
};

std::string shape_string(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

int run_tensors(const TensorsOptions& opt) {
  const auto state = vision::load_state_dict(opt.file);
  std::int64_t elements = 0;
  nlohmann::json listing = nlohmann::json::array();
  for (const auto& [name, tensor] : state) {
    elements += tensor.numel();
    listing.push_back({{"name", name}, {"dtype", std::string(c10::toString(tensor.scalar_type()))},
                       {"shape", tensor.sizes().vec()}});
  }
  if (opt.json) {
    std::cout << nlohmann::json{{"file", opt.file}, {"tensors", listing}, {"elements", elements}}.dump(2) << "\n";
    return 0;
  }
  for (const auto& [name, tensor] : state) {
    std::cout << name << "  " << c10::toString(tensor.scalar_type()) << "  " << shape_string(tensor) << "\n";
  }
  std::cout << state.size() << " tensors, " << elements << " elements\n";
  return 0;
}
}  // namespace

Command add_tensors_command(CLI::App& app) {
  auto opt = std::make_shared<TensorsOptions>();
  auto* cmd = app.add_subcommand("tensors", "List the tensors of a weights file (safetensors or .pth)");
  cmd->footer("Example:\n  sparsescope tensors vit_small_patch16_224.safetensors --json");
  cmd->add_option("file", opt->file, "safetensors or .pth file")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--json", opt->json, "Print the listing as JSON");
  return [opt] { return run_tensors(*opt); };
}

}  // namespace sparsescope::cli
