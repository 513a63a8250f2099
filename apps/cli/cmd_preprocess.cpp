// sparsescope preprocess INPUT... --out DIR: the first stage of inference on its own. Each image
// becomes the exact model input timm's eval transform would give ([3, S, S] float32, written as
// safetensors) plus a PNG of the resized, cropped pixels the model sees.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "batch.h"
#include "commands.h"
#include "progress.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/safetensors.h"

namespace sparsescope::cli {

namespace fs = std::filesystem;

namespace {
struct PreprocessOptions {
  std::vector<std::string> inputs;
  std::string out;
  int img_size = 224;
  double crop_pct = 0.875;
  std::string interpolation = "bicubic";
  bool force = false;
  bool json = false;
  Shard shard;
};

int run_preprocess(const PreprocessOptions& opt) {
  vision::EvalTransform transform;
  transform.img_size = opt.img_size;
  transform.crop_pct = opt.crop_pct;
  transform.interpolation = vision::parse_interpolation(opt.interpolation);

  const auto items = opt.shard.take(expand_inputs(opt.inputs, image_extensions(), opt.out));
  const OutputDir out_dir(opt.out, "--out", opt.shard.suffix());
  BatchReport report(opt.shard);
  ProgressBar progress("preprocess", items.size());
  for (const auto& item : items) {
    const fs::path stem = out_dir.path() / fs::path(item.name).replace_extension();
    const std::string tensor_path = stem.string() + ".safetensors";
    const std::string preview_path = stem.string() + ".png";
    process_item(item.source, report, progress, "cpu", [&] {
      SPARSESCOPE_CHECK(item.error.empty(), item.error);
      if (!opt.force && fs::exists(tensor_path) && fs::exists(preview_path)) {
        report.skipped();
        return;
      }
      const vision::Image image = vision::read_image(item.source.string());
      const vision::Image seen = vision::eval_geometry(image, transform);
      const at::Tensor input = vision::normalize_image(seen, transform.mean, transform.std);  // [3, S, S]
      fs::create_directories(stem.parent_path());
      const nlohmann::json meta = {{"source", printable(item.source.string())},
                                   {"source_width", image.width},
                                   {"source_height", image.height},
                                   {"img_size", transform.img_size},
                                   {"crop_pct", transform.crop_pct},
                                   {"interpolation", opt.interpolation}};
      vision::save_safetensors(tensor_path, {{"input", input}}, {{"sparsescope", meta.dump()}});
      vision::write_png(preview_path, seen);
      if (!opt.json) {
        progress.print_line(item.name + ": " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                            " -> input [3, " + std::to_string(input.size(1)) + ", " + std::to_string(input.size(2)) +
                            "], wrote " + tensor_path);
      }
      report.succeeded();
    });
  }
  return report.finish(out_dir, report.summary(progress.elapsed_seconds()), opt.json,
                       report.counts_line() + "; summary in " + report.summary_path(out_dir).string());
}
}  // namespace

Command add_preprocess_command(CLI::App& app) {
  auto opt = std::make_shared<PreprocessOptions>();
  auto* cmd = app.add_subcommand("preprocess", "Turn images into model inputs exactly as timm's eval transform does");
  cmd->footer(
      "Examples:\n"
      "  sparsescope preprocess assets/samples --out out/\n"
      "  sparsescope preprocess photos/ a.jpg --out inputs/ --img-size 384 --crop-pct 1.0 --json\n"
      "Writes DIR/<name>.safetensors (tensor 'input', [3, S, S] float32), DIR/<name>.png and DIR/summary.json.\n"
      "Finished items are skipped unless --force; a bad file is reported and skipped; exit status 1 if any failed.");
  cmd->add_option("inputs", opt->inputs, "Image files and folders (searched recursively)")->required();
  cmd->add_option("--out", opt->out, "Output directory")->required();
  add_shard_option(*cmd, opt->shard);
  cmd->add_option("--img-size", opt->img_size, "Model input size S")->check(CLI::Range(16, 4096));
  cmd->add_option("--crop-pct", opt->crop_pct, "Center-crop fraction (resize to S / crop_pct first)")
      ->check(CLI::Range(0.05, 1.0));
  cmd->add_option("--interpolation", opt->interpolation, "Resize filter")
      ->check(CLI::IsMember({"bicubic", "bilinear"}));
  cmd->add_flag("--force", opt->force, "Redo items whose outputs exist");
  cmd->add_flag("--json", opt->json, "Print the summary as JSON on stdout");
  return [opt] { return run_preprocess(*opt); };
}

}  // namespace sparsescope::cli
