// sparsescope reconstruct INPUT... --out DIR --weights MAE: masked-image reconstruction with a
// pretrained MAE or MAE-LUT (mae_reconstruct.h). Each image becomes DIR/<name>.png, its masked input,
// the reconstruction (predicted removed patches, the visible ones as they were) and the image side by
// side, written atomically after its trace (--record): an output that exists is complete, and a
// rerun skips it unless --force. Bad files are reported and skipped (exit status 1).
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "batch.h"
#include "commands.h"
#include "progress.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/mae_reconstruct.h"
#include "sparsescope/vision/model_spec.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::cli {

namespace fs = std::filesystem;

namespace {

struct ReconstructOptions {
  std::vector<std::string> inputs;
  std::string out, weights, model, device = "cpu";
  double mask_ratio = 0.75;
  uint64_t seed = 0;
  int zoom = 0;
  bool record = false;
  bool force = false;
  bool json = false;
  Shard shard;
};

// masked | reconstruction | original, each enlarged `zoom` times (nearest), 2 white pixels apart.
vision::Image side_by_side(const vision::MaeReconstruction& r, int zoom) {
  std::vector<at::Tensor> parts;
  for (const at::Tensor* p : {&r.masked, &r.reconstruction, &r.original}) {
    if (!parts.empty()) parts.push_back(at::full({p->size(0) * zoom, 2, 3}, 255, at::kByte));
    parts.push_back(p->repeat_interleave(zoom, 0).repeat_interleave(zoom, 1));
  }
  return vision::tensor_to_image(at::cat(parts, 1).contiguous());
}

int run_reconstruct(const ReconstructOptions& o) {
  SPARSESCOPE_CHECK(o.mask_ratio > 0 && o.mask_ratio < 1, "--mask-ratio must be in (0, 1), got ", o.mask_ratio);
  vision::MaskedAutoencoder model{nullptr};
  try {
    model = vision::load_mae(o.weights, o.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--weights: ", e.what());
  }
  const auto& config = model->config();
  SPARSESCOPE_CHECK(config.visible(o.mask_ratio) >= 1, "--mask-ratio ", o.mask_ratio, " leaves none of the model's ",
                    config.num_patches(), " patches visible");
  model->to(vision::parse_device(o.device, "--device"));
  const int zoom = o.zoom > 0 ? o.zoom : std::max<int>(1, static_cast<int>(128 / config.img_size));
  const auto items = o.shard.take(expand_inputs(o.inputs, image_extensions(), o.out));
  const OutputDir out_dir(o.out, "--out", o.shard.suffix());
  BatchReport report(o.shard);
  ProgressBar progress("reconstruct", items.size());
  nlohmann::json losses = nlohmann::json::object();
  for (const auto& item : items) {
    process_item(item.source, report, progress, o.device, [&] {
      SPARSESCOPE_CHECK(item.error.empty(), item.error);
      const fs::path path = out_dir.path() / fs::path(item.name).replace_extension(".png");
      const fs::path trace_path = path.string() + ".trace.safetensors";
      if (!o.force && fs::exists(path) && (!o.record || fs::exists(trace_path))) {
        report.skipped();
      } else {
        vision::Trace trace;
        const vision::MaeReconstruction r = vision::reconstruct_mae(
            model, vision::read_image(item.source.string()), o.mask_ratio, o.seed, o.record ? &trace : nullptr,
            printable(item.source.string()));
        fs::create_directories(path.parent_path());
        if (o.record) vision::save_trace(trace, trace_path.string());
        vision::write_png(path.string(), side_by_side(r, zoom));
        losses[item.name] = r.loss;
        if (!o.json) {
          progress.print_line(item.name + ": loss " + std::to_string(r.loss) + " on " +
                              std::to_string(static_cast<int64_t>(r.mask.sum().item<float>())) + " removed patches, wrote " +
                              printable(path.string()));
        }
        report.succeeded();
      }
    });
  }
  auto summary = report.summary(progress.elapsed_seconds());
  summary["model"] = config.name;
  summary["mask_ratio"] = o.mask_ratio;
  summary["seed"] = o.seed;
  summary["loss"] = losses;
  return report.finish(out_dir, summary, o.json,
                       report.counts_line() + "; summary in " + report.summary_path(out_dir).string());
}

}  // namespace

Command add_reconstruct_command(CLI::App& app) {
  auto o = std::make_shared<ReconstructOptions>();
  auto* cmd = app.add_subcommand("reconstruct", "Masked-image reconstruction with a pretrained MAE or MAE-LUT");
  cmd->footer(
      "Examples:\n"
      "  sparsescope reconstruct photos/ --out recon/ --weights pre/model.safetensors     # sparsescope train --task mae\n"
      "  sparsescope reconstruct a.jpg --out recon/ --weights mae_visualize_vit_large.pth --model mae_vit_large_patch16 \\\n"
      "      --mask-ratio 0.75 --seed 2 --record\n"
      "Writes DIR/<name>.png per image: the masked input (removed patches grey) | the reconstruction (the\n"
      "prediction in the removed patches, the visible ones as they were) | the image, at the model's size\n"
      "(resized and centre-cropped) enlarged --zoom times; DIR/summary.json with each image's loss. With\n"
      "--record also <output>.trace.safetensors: the encoder's attention over the visible patches and the\n"
      "decoder's over all of them (the viewer shows which patches were removed). The same seed removes the\n"
      "same patches. Finished outputs are skipped unless --force; a bad file is reported and skipped; exit\n"
      "status 1 if any failed, 2 for usage errors.");
  cmd->add_option("inputs,--input", o->inputs, "Image files and folders (searched recursively)")->required();
  cmd->add_option("--out", o->out, "Output directory")->required();
  add_shard_option(*cmd, o->shard);
  cmd->add_option("--weights", o->weights, "MAE or MAE-LUT pretraining weights: ours (with their card) or official "
                  "checkpoints with --model")->required();
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--model", o->model, "The configuration of weights without a card, e.g. mae_vit_base_patch16");
  cmd->add_option("--mask-ratio", o->mask_ratio, "Fraction of the patches removed, in (0, 1)");
  cmd->add_option("--seed", o->seed, "Seed of the masking noise");
  cmd->add_option("--zoom", o->zoom, "Enlarge the pictures this many times (0: to about 128 pixels)")->check(CLI::Range(0, 64));
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N");
  cmd->add_flag("--record", o->record, "Also write <output>.trace.safetensors (the viewer opens it)");
  cmd->add_flag("--force", o->force, "Redo items whose outputs exist");
  cmd->add_flag("--json", o->json, "Print the summary as JSON on stdout");
  return [o] { return run_reconstruct(*o); };
}

}  // namespace sparsescope::cli
