// sparsescope sr INPUT... --out DIR: super-resolution of images, folders and video frames with the
// weights of a registered SR model (sr_model.h), tile by tile (sr_tiling.h) so that memory stays bounded for any image size.
// Each image becomes DIR/<name>.png and each selected frame DIR/<video name>.frame<N>.png, written
// atomically after its trace (--record): an output that exists is complete, and a rerun skips it
// (resume) unless --force.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "batch.h"
#include "commands.h"
#include "number_checks.h"
#include "progress.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/model_spec.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/sr_model.h"
#include "sparsescope/vision/trace.h"
#include "sparsescope/vision/video.h"

namespace sparsescope::cli {

namespace fs = std::filesystem;

namespace {

struct SrOptions {
  std::vector<std::string> inputs;
  std::string out;
  std::string weights = SPARSESCOPE_DEFAULT_SR_WEIGHTS;
  std::string model;
  int64_t scale = 0;
  int64_t tile = 256;
  int64_t overlap = 16;
  std::string device = "cpu";
  std::string dtype = "fp32";
  int frames_every = 30;
  bool record = false;
  int64_t record_size = 64;
  bool force = false;
  bool json = false;
  Shard shard;
};

// The model of --weights on --device in --dtype, checked against --scale.
std::unique_ptr<vision::SrModel> load_model(const SrOptions& o) {
  const at::Device device = vision::parse_device(o.device, "--device");
  const at::ScalarType dtype = vision::parse_dtype(o.dtype, "--dtype");
  SPARSESCOPE_CHECK(fs::exists(o.weights), "--weights: '", printable(o.weights), "' does not exist",
                    o.weights == SPARSESCOPE_DEFAULT_SR_WEIGHTS ? " (no bundled SR model in this checkout; pass "
                                                                  "--weights)" : "");
  std::unique_ptr<vision::SrModel> model;
  try {
    model = vision::load_sr_model(o.weights, o.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--weights: ", e.what());
  }
  SPARSESCOPE_CHECK(o.scale == 0 || o.scale == model->scale(), "--scale ", o.scale, ": ", model->name(), " upscales x",
                    model->scale(), " (choose weights trained for x", o.scale, ")");
  model->to(device, dtype);
  return model;
}

int run_sr(const SrOptions& o) {
  const std::unique_ptr<vision::SrModel> model = load_model(o);
  std::vector<std::string> extensions = image_extensions();
  extensions.insert(extensions.end(), video_extensions().begin(), video_extensions().end());
  const auto items = o.shard.take(expand_inputs(o.inputs, extensions, o.out));
  const OutputDir out_dir(o.out, "--out", o.shard.suffix());
  BatchReport report(o.shard);
  ProgressBar progress("sr", items.size());
  // Upscales one image into `path` (and records it into <path>.trace.safetensors) unless done.
  auto upscale_into = [&](const fs::path& path, const vision::Image& image, const std::string& what,
                          const std::string& input, int64_t frame) {
    const fs::path trace_path = path.string() + ".trace.safetensors";
    if (!o.force && fs::exists(path) && (!o.record || fs::exists(trace_path))) {
      report.skipped();
      return;
    }
    fs::create_directories(path.parent_path());
    if (o.record) vision::save_trace(model->record(image, o.record_size, input, frame), trace_path.string());
    const vision::Image sr =
        vision::tensor_to_image(vision::upscale_image(*model, image, o.tile, o.overlap).permute({1, 2, 0}).contiguous());
    vision::write_png(path.string(), sr);
    if (!o.json) {
      progress.print_line(what + ": " + std::to_string(image.width) + "x" + std::to_string(image.height) + " -> " +
                          std::to_string(sr.width) + "x" + std::to_string(sr.height) + ", wrote " +
                          printable(path.string()));
    }
    report.succeeded();
  };
  for (const auto& item : items) {
    process_item(item.source, report, progress, o.device, [&] {
      SPARSESCOPE_CHECK(item.error.empty(), item.error);
      if (!is_video(item.source)) {
        upscale_into(out_dir.path() / fs::path(item.name).replace_extension(".png"), vision::read_image(item.source.string()),
                     item.name, printable(item.source.string()), -1);
      } else {
        vision::VideoReader video(item.source.string(), o.frames_every);
        vision::Image frame;
        std::int64_t index = 0;
        while (video.next(frame, &index)) {
          const std::string key = item.name + ".frame" + std::to_string(index);
          upscale_into(out_dir.path() / (key + ".png"), frame, key, printable(item.source.string()), index);
        }
        SPARSESCOPE_CHECK(!video.ended_early(), "the stream ended after ", video.frames_passed(), " of the ",
                          video.info().frame_count, " frames its container announces (a truncated or damaged file)");
      }
    });
  }
  auto summary = report.summary(progress.elapsed_seconds());
  summary["model"] = model->name();
  summary["scale"] = model->scale();
  return report.finish(out_dir, summary, o.json,
                       report.counts_line() + "; summary in " + report.summary_path(out_dir).string());
}

}  // namespace

Command add_sr_command(CLI::App& app) {
  auto opt = std::make_shared<SrOptions>();
  auto* cmd = app.add_subcommand("sr", "Super-resolution of images, folders and video frames");
  cmd->footer(
      "Examples:\n"
      "  sparsescope sr photo.jpg --out big/ --weights runs/light_x4/model.safetensors\n"
      "  sparsescope sr photos/ clip.mp4 --out big/ --weights DLGSANet_x4.pth --model dlgsanet_light_x4 --device cuda\n"
      "Writes DIR/<name>.png per image, DIR/<video>.frame<N>.png per selected frame, and DIR/summary.json;\n"
      "with --record also <output>.trace.safetensors (the recording of a central --record-size square: each\n"
      "MHDLSA's per-pixel kernels and each SparseGSA's channel attention after the ReLU, with its sparsity).\n"
      "Images are upscaled in tiles of --tile LR pixels with --tile-overlap pixels of context (memory stays\n"
      "bounded; 0 for one pass). Finished outputs are skipped unless --force; a bad file is reported and\n"
      "skipped; exit status 1 if any failed, 2 for usage errors.");
  cmd->add_option("inputs,--input", opt->inputs, "Image files, video files and folders (searched recursively)")
      ->required();
  cmd->add_option("--out", opt->out, "Output directory")->required();
  add_shard_option(*cmd, opt->shard);
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--weights", opt->weights, "SR weights: ours (with a model card) or a method's own checkpoint (with --model)");
  cmd->add_option("--model", opt->model, "The SR configuration, e.g. dlgsanet_light_x4 (default: the weights' model card)");
  cmd->add_option("--scale", opt->scale, "Expected scale, checked against the model's (0: the model's)")->check(kNonNegative);
  cmd->add_option("--tile", opt->tile, "Tile side in LR pixels (0: the whole image at once)")->check(kNonNegative);
  cmd->add_option("--tile-overlap", opt->overlap, "LR pixels of context around each tile")->check(kNonNegative);
  cmd->add_option("--device", opt->device, "cpu, cuda or cuda:N");
  cmd->add_option("--dtype", opt->dtype, "Compute dtype")->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  cmd->add_option("--frames-every", opt->frames_every, "Take every N-th frame of videos")->check(CLI::Range(1, 100000));
  cmd->add_flag("--record", opt->record,
                "Also write <output>.trace.safetensors: each block's per-pixel kernels and channel attention (the viewer opens it)");
  cmd->add_option("--record-size", opt->record_size, "LR pixels (a central square) that --record records")
      ->check(CLI::Range(1, 512));
  cmd->add_flag("--force", opt->force, "Redo items whose outputs exist");
  cmd->add_flag("--json", opt->json, "Print the summary as JSON on stdout");
  return [opt] { return run_sr(*opt); };
}

}  // namespace sparsescope::cli
