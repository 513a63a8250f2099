// sparsescope trace info|export: what recorded traces hold, and their attention drawn as PNG grids.
// Each file is read on its own; a bad one is reported on one line and the others go on.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "number_checks.h"
#include "batch.h"
#include "commands.h"
#include "overlay_options.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_maps.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/overlay.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::cli {

namespace fs = std::filesystem;

namespace {

struct InfoOptions {
  std::vector<std::string> files;
  bool per_head = false;
  bool json = false;
};

struct ExportOptions {
  std::vector<std::string> inputs;
  std::string out;
  int64_t query = 0;
  std::vector<std::string> sites;
  OverlayOptions overlay;
};

const std::vector<std::string>& trace_extensions() {
  static const std::vector<std::string> extensions{".safetensors"};
  return extensions;
}

std::string layout_text(const vision::TokenLayout& layout) {
  std::ostringstream out;
  out << layout.tokens() << " tokens: prefix " << layout.prefix;
  if (!layout.grid.empty()) out << " + grid " << layout.grid[0] << "x" << layout.grid[1] << "x" << layout.grid[2];
  if (layout.kind == vision::kPointsLayout) out << " + " << layout.points << " points";
  return out.str();
}

nlohmann::json number(float v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

// Each head's mean attention distance in patches, NaN where the site has no full patch maps.
at::Tensor distances(const vision::SiteTrace& s, const vision::TokenLayout& layout) {
  return vision::has_attention_distance(s, layout) ? vision::mean_attention_distance(s, layout)
                                                   : at::full({s.heads()}, NAN);
}

nlohmann::json info_json(const std::string& file, const vision::Trace& trace) {
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& s : trace.sites) {
    nlohmann::json heads = nlohmann::json::array();
    const at::Tensor distance = distances(s, trace.info.layout);
    for (int64_t h = 0; h < s.heads(); ++h) {
      heads.push_back({{"recall", number(s.stats[h][vision::kRecall].item<float>())},
                       {"density", number(s.stats[h][vision::kDensity].item<float>())},
                       {"entropy", number(s.stats[h][vision::kEntropy].item<float>())},
                       {"distance", number(distance[h].item<float>())}});
    }
    nlohmann::json parts = nlohmann::json::array();
    for (const auto& p : s.parts) {
      parts.push_back({{"name", p.name}, {"merge", p.merge}, {"mean_gate", number(p.gate.mean().item<float>())}});
    }
    sites.push_back({{"name", s.name},
                     {"kind", s.kind},
                     {"parts", parts},
                     {"pattern", s.pattern},
                     {"queries", s.queries},
                     {"keys", s.keys},
                     {"pool", s.pool},
                     {"subset", s.subset},
                     {"heads", heads},
                     {"row_queries", std::vector<int64_t>(s.row_queries.data_ptr<int64_t>(),
                                                          s.row_queries.data_ptr<int64_t>() + s.row_queries.numel())}});
  }
  nlohmann::json info = nlohmann::json::parse(vision::trace_info_json(trace.info));
  info["file"] = printable(file);
  info["layout"]["tokens"] = trace.info.layout.tokens();
  info["image"] = trace.image.defined() ? nlohmann::json(trace.image.sizes().vec()) : nlohmann::json(nullptr);
  info["sites"] = sites;
  return info;
}

void print_info(const std::string& file, const vision::Trace& trace, bool per_head) {
  const auto& i = trace.info;
  std::cout << file << "\n  model " << i.model << ", method " << i.method << ", input " << i.input;
  if (i.frame >= 0) std::cout << " frame " << i.frame;
  std::cout << "\n  " << layout_text(i.layout);
  if (trace.image.defined()) std::cout << ", image " << trace.image.size(1) << "x" << trace.image.size(0);
  std::cout << "\n  recorded by " << i.producer << "\n";
  if (!i.topk.empty()) std::cout << "  predicted " << vision::describe(i.topk) << "\n";
  // The site and shape columns fit the longest name ("visual.transformer.resblocks.11.attn") and shape.
  auto shape_of = [](const vision::SiteTrace& s) {
    return std::to_string(s.queries) + " x " + std::to_string(s.keys) + (s.subset.empty() ? "" : " (" + s.subset + ")");
  };
  int width = 24, shape_width = 16;
  for (const auto& s : trace.sites) {
    width = std::max(width, static_cast<int>(s.name.size()) + 2);
    shape_width = std::max(shape_width, static_cast<int>(shape_of(s).size()) + 2);
  }
  std::cout << "  " << std::left << std::setw(width) << "site" << std::setw(14) << "pattern" << std::setw(shape_width)
            << "queries x keys" << std::right << std::setw(6) << "pool" << std::setw(7) << "heads" << std::setw(9)
            << "recall" << std::setw(9) << "density" << std::setw(9) << "entropy" << std::setw(10) << "distance"
            << "\n";
  auto row = [width, shape_width](const std::string& name, const std::string& pattern, const std::string& shape,
                                  const std::string& pool, const std::string& heads, const at::Tensor& stats,
                                  float distance) {
    std::cout << "  " << std::left << std::setw(width) << name << std::setw(14) << pattern << std::setw(shape_width) << shape
              << std::right << std::setw(6) << pool << std::setw(7) << heads << std::fixed << std::setprecision(3);
    auto cell = [](int width, float v) {
      std::cout << std::setw(width);
      if (std::isnan(v))
        std::cout << "-";
      else
        std::cout << v;
    };
    for (const int64_t c : {vision::kRecall, vision::kDensity, vision::kEntropy}) cell(9, stats[c].item<float>());
    cell(10, distance);
    std::cout << "\n";
  };
  for (const auto& s : trace.sites) {
    const std::string shape = shape_of(s);
    const at::Tensor distance = distances(s, trace.info.layout);
    // Per site: the mean over heads (recall keeps NaN when the trace was not compared with dense).
    row(s.name, s.kind == vision::kAttentionMap ? s.pattern : s.kind + " map", shape, std::to_string(s.pool),
        std::to_string(s.heads()), s.stats.mean(0), distance.mean().item<float>());
    for (const auto& p : s.parts) {
      std::cout << "    part " << p.name << " (" << p.merge << "), mean gate " << std::setprecision(3)
                << p.gate.mean().item<float>() << "\n";
    }
    if (!per_head) continue;
    for (int64_t h = 0; h < s.heads(); ++h) {
      row("  head " + std::to_string(h), "", "", "", "", s.stats[h], distance[h].item<float>());
    }
  }
  std::cout << std::defaultfloat;
}

int run_info(const InfoOptions& opt) {
  BatchReport report;
  nlohmann::json listing = nlohmann::json::array();
  for (const auto& file : opt.files) {
    try {
      const auto trace = vision::load_trace(file);
      if (opt.json) {
        listing.push_back(info_json(file, trace));
      } else {
        print_info(file, trace, opt.per_head);
      }
      report.succeeded();
    } catch (const std::exception& e) {
      report.failed(file, error_text(e));
      std::cerr << "sparsescope: " << report.last_failure_line() << "\n";
    }
  }
  if (opt.json) std::cout << listing.dump(2) << "\n";
  return report.exit_status();
}

// "clip.mp4.frame30.trace.safetensors" -> "clip.mp4.frame30": the folder of its images.
std::string trace_stem(const std::string& name) {
  std::string stem = name;
  for (const std::string suffix : {".safetensors", ".trace"}) {
    if (stem.size() > suffix.size() && stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0)
      stem.resize(stem.size() - suffix.size());
  }
  return stem;
}

// Returns the number of images written.
int export_trace(const vision::Trace& trace, const fs::path& dir, const ExportOptions& opt) {
  const auto style = opt.overlay.style();
  const std::vector<const vision::SiteTrace*> drawable = vision::attention_sites(trace);
  std::vector<const vision::SiteTrace*> sites = opt.sites.empty() ? drawable : std::vector<const vision::SiteTrace*>{};
  for (const auto& name : opt.sites) sites.push_back(&trace.site(name));
  fs::create_directories(dir);
  int written = 0;
  for (const auto* s : sites) {
    std::string file = s->name + ".png";
    std::replace(file.begin(), file.end(), '/', '_');
    vision::write_png((dir / file).string(), vision::head_grid_overlay(trace, *s, opt.query, style));
    ++written;
  }
  // Rollout multiplies full maps of every layer over the same tokens; pooled traces have none, and
  // MAE's encoder sees only the visible patches.
  const bool full = std::all_of(drawable.begin(), drawable.end(),
                                [](const auto* s) { return s->pool == 1 && s->subset.empty(); });
  if (full && !drawable.empty()) {
    vision::write_png((dir / "rollout.png").string(), vision::rollout_overlay(trace, opt.query, style));
    ++written;
  }
  return written;
}

int run_export(const ExportOptions& opt) {
  const auto items = expand_inputs(opt.inputs, trace_extensions(), opt.out);
  const OutputDir out_dir(opt.out);
  BatchReport report;
  for (const auto& item : items) {
    try {
      SPARSESCOPE_CHECK(item.error.empty(), item.error);
      const auto trace = vision::load_trace(item.source.string());
      const fs::path dir = out_dir.path() / trace_stem(item.name);
      const int written = export_trace(trace, dir, opt);
      std::cerr << printable(item.source.string()) << ": " << written << " images in " << printable(dir.string())
                << "\n";
      report.succeeded();
    } catch (const std::exception& e) {
      report.failed(item.source.string(), error_text(e));
      std::cerr << "sparsescope: " << report.last_failure_line() << "\n";
    }
  }
  return report.exit_status();
}

}  // namespace

Command add_trace_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("trace", "Inspect recorded attention traces and draw them as images");
  cmd->require_subcommand(1);
  cmd->footer(
      "Examples:\n"
      "  sparsescope trace info out/traces/cat.png.trace.safetensors\n"
      "  sparsescope trace export out/traces --out out/attention --colormap magma\n"
      "Traces come from `sparsescope infer --record`; they are safetensors files Python reads as well.");

  auto info = std::make_shared<InfoOptions>();
  auto* info_cmd = cmd->add_subcommand("info", "Sites, heads, shapes and per-head recall, density, entropy and mean "
                                                "attention distance (in patches)");
  info_cmd->footer(
      "Examples:\n"
      "  sparsescope trace info out/traces/cat.png.trace.safetensors\n"
      "  sparsescope trace info out/traces/*.trace.safetensors --per-head\n"
      "  sparsescope trace info cat.png.trace.safetensors --json\n"
      "Per site the table shows the mean over heads. recall: the dense attention mass that the kept\n"
      "connections cover (\"-\" when not recorded), density: kept fraction, entropy: nats per query.\n"
      "Exit status 1 if a file is not a readable trace, 2 for usage errors.");
  info_cmd->add_option("file", info->files, "Trace files (.safetensors)")->required()->check(CLI::ExistingFile);
  info_cmd->add_flag("--per-head", info->per_head, "One row per head below each site");
  info_cmd->add_flag("--json", info->json, "Print everything as JSON (a list, one entry per file)");

  auto exp = std::make_shared<ExportOptions>();
  auto* exp_cmd = cmd->add_subcommand("export", "Draw each site's per-head maps of a query, and the rollout, as PNGs");
  exp_cmd->footer(
      "Examples:\n"
      "  sparsescope trace export out/traces/cat.png.trace.safetensors --out out/attention\n"
      "  sparsescope trace export out/traces --out out/attention --query 0 --sites blocks.11.attn --colormap turbo\n"
      "Writes DIR/<trace>/<site>.png (one tile per head: where the query looks, over the image) and\n"
      "DIR/<trace>/rollout.png (attention rollout, when the trace holds full maps). Folders are searched\n"
      "for .safetensors files. Exit status 1 if a file failed, 2 for usage errors.");
  exp_cmd->add_option("input", exp->inputs, "Trace files and folders")->required();
  exp_cmd->add_option("--out", exp->out, "Output directory")->required();
  exp_cmd->add_option("--query", exp->query, "Query token whose attention is drawn (0: the class token)")
      ->check(kNonNegative);
  exp_cmd->add_option("--sites", exp->sites, "Sites to draw (default: all)")->delimiter(',');
  add_overlay_options(*exp_cmd, exp->overlay);

  return [info_cmd, info, exp] { return info_cmd->parsed() ? run_info(*info) : run_export(*exp); };
}

}  // namespace sparsescope::cli
