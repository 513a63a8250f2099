// sparsescope methods: what the registries hold (attention policies, model families, training
// tasks), with their options and defaults.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sparsescope/vision/registry.h"

namespace sparsescope::cli {

namespace {

void print_entries(const nlohmann::json& entries, const char* title) {
  std::cout << title << ":\n";
  for (const auto& e : entries) {
    std::cout << "  " << e["name"].get<std::string>() << ": " << e["description"].get<std::string>() << "\n";
    if (e.contains("configs")) {
      std::cout << "    configs:";
      for (const auto& c : e["configs"]) std::cout << " " << c.get<std::string>();
      std::cout << "\n";
    }
    if (!e.contains("options")) continue;
    for (const auto& o : e["options"]) {
      std::cout << "    " << o["name"].get<std::string>() << " = " << o["default"].dump() << "  "
                << o["help"].get<std::string>() << "\n";
    }
  }
}

}  // namespace

Command add_methods_command(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("methods", "List the registered attention methods, models and training tasks");
  cmd->footer(
      "Attention methods go to --method of infer, eval and the viewer (a model runs its own or dense);\n"
      "training tasks to train --task, their options as flags ('_' written '-').");
  cmd->add_flag("--json", *json, "Print everything as JSON on stdout");
  return [json] {
    const auto all = nlohmann::json::parse(vision::registry_json());
    if (*json) {
      std::cout << all.dump(2) << "\n";
      return 0;
    }
    print_entries(all["attention_policies"], "attention methods (--method)");
    print_entries(all["models"], "models (--model)");
    print_entries(all["tasks"], "training tasks (train --task)");
    return 0;
  };
}

}  // namespace sparsescope::cli
