// sparsescope infer: classify images, folders and video frames with a ViT-family model; one JSON
// line per image or frame in DIR/predictions.jsonl, rewritten atomically after every batch so an
// interrupted run loses at most one batch and resumes where it stopped. With --record / --overlays
// each image or frame also gets a trace and PNG overlays, written before its prediction line, so a
// line in predictions.jsonl means its files are complete; an image is done when its line and the
// files asked for exist.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "number_checks.h"
#include "batch.h"
#include "commands.h"
#include "model_options.h"
#include "overlay_options.h"
#include "progress.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/atomic_file.h"
#include "sparsescope/vision/evaluate.h"
#include "sparsescope/vision/graphed_forward.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/overlay.h"
#include "sparsescope/vision/prediction.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/trace.h"
#include "sparsescope/vision/video.h"
#include "sparsescope/vision/vit.h"
#include "sparsescope/vision/vit_trace.h"
#include "sparsescope/vision/vit_input.h"

namespace sparsescope::cli {

namespace fs = std::filesystem;

namespace {

struct InferOptions {
  vision::ModelSpec model;
  std::vector<std::string> inputs;
  std::string out;
  int batch = 16;
  int topk = 5;
  std::string labels;
  int frames_every = 30;
  bool force = false;
  bool json = false;
  Shard shard;
  bool record = false;
  bool overlays = false;
  bool cuda_graph = false;
  int64_t record_budget = vision::RecorderOptions{}.budget;
  OverlayOptions overlay;
};

std::vector<std::string> read_labels(const std::string& path) {
  if (path.empty()) return {};
  std::ifstream in(path);
  SPARSESCOPE_CHECK(in.good(), "--labels: cannot read '", path, "'");
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) {
    SPARSESCOPE_CHECK(vision::is_utf8(line), "--labels: '", printable(path), "' line ", labels.size() + 1,
                      " is not UTF-8 text (", printable(line), "); save the file as UTF-8");
    labels.push_back(line);
  }
  return labels;
}

// One image or video frame waiting for its batch.
struct Pending {
  std::string key;  // "name" or "name#frame"
  nlohmann::json line;
  at::Tensor input;  // [3, S, S]
  std::string source;
  std::int64_t frame = -1;
  bool counts_as_input = false;  // a still image is an input of its own; frames count with their video
};

// Where the trace and overlays of an image or frame go: "nested/cat.png" -> DIR/traces/nested/
// cat.png.trace.safetensors, "clip.mp4#30" -> DIR/traces/clip.mp4.frame30.trace.safetensors.
struct Artifacts {
  fs::path trace, heads, rollout;

  Artifacts(const fs::path& out, std::string key) {
    if (const auto hash = key.rfind('#'); hash != std::string::npos) key.replace(hash, 1, ".frame");
    trace = out / "traces" / (key + ".trace.safetensors");
    heads = out / "overlays" / (key + ".heads.png");
    rollout = out / "overlays" / (key + ".rollout.png");
  }
};

class Predictions {
 public:
  Predictions(std::string path, bool force) : path_(std::move(path)) {
    if (force || !fs::exists(path_)) return;
    std::ifstream in(path_);
    for (std::string text; std::getline(in, text);) {
      if (text.empty()) continue;
      const auto line = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      SPARSESCOPE_CHECK(!line.is_discarded() && line.contains("key") && line["key"].is_string(), "'", path_,
                        "' has a line that is not a prediction; move it away or pass --force");
      set(line["key"].get<std::string>(), text);
    }
  }
  bool done(const std::string& key) const { return index_.count(key) > 0; }
  /// Adds the line, or replaces the one of the same key (an image redone for missing traces).
  void add(const nlohmann::json& line) { set(line["key"].get<std::string>(), line.dump()); }
  void flush() const {
    vision::write_file_atomically(path_, [&](std::ostream& out) {
      for (const auto& l : lines_) out << l << "\n";
    });
  }

 private:
  void set(const std::string& key, std::string text) {
    const auto [it, inserted] = index_.emplace(key, lines_.size());
    if (inserted) {
      lines_.push_back(std::move(text));
    } else {
      lines_[it->second] = std::move(text);
    }
  }

  std::string path_;
  std::map<std::string, std::size_t> index_;  // key -> its line
  std::vector<std::string> lines_;
};

// A trace, then its overlays: the rollout before the heads, because the heads file is what marks
// the overlays done. Rollout needs full maps; a trace pooled by --record-budget gets heads only.
void write_overlays(const vision::Trace& trace, const Artifacts& files, const vision::OverlayStyle& style) {
  fs::create_directories(files.heads.parent_path());
  const bool full = std::all_of(trace.sites.begin(), trace.sites.end(), [](const auto& s) { return s.pool == 1; });
  if (full) vision::write_png(files.rollout.string(), vision::rollout_overlay(trace, 0, style));
  // DINO's view: every head's class-token attention in the last block.
  vision::write_png(files.heads.string(), vision::head_grid_overlay(trace, trace.sites.back(), 0, style));
}

// One line on stdout per prediction: "input[#frame]: top-1 label or class (score)".
void print_prediction(const nlohmann::json& line) {
  const auto& top = line["topk"][0];
  std::cout << line["input"].get<std::string>();
  if (line.contains("frame") && !line["frame"].is_null()) std::cout << "#" << line["frame"];
  std::cout << ": " << (top.contains("label") ? top["label"].get<std::string>() : std::to_string(top["class"].get<int64_t>()))
            << " (" << top["score"].get<float>() << ")\n";
}

int run_infer(const InferOptions& opt) {
  vision::LoadedModel loaded = vision::load_model(opt.model);  // usage errors (name, weights, device) throw: exit 2
  auto& model = loaded.model;
  SPARSESCOPE_CHECK(model->config().num_classes > 0, "--model ", loaded.name,
                    " has no classification head (a backbone); there is nothing to predict");
  const auto labels = opt.labels.empty() ? loaded.classes : read_labels(opt.labels);
  SPARSESCOPE_CHECK(labels.empty() || static_cast<int64_t>(labels.size()) == model->config().num_classes,
                    "--labels: '", opt.labels, "' has ", labels.size(), " lines, the model has ",
                    model->config().num_classes, " classes");

  std::vector<std::string> extensions = image_extensions();
  extensions.insert(extensions.end(), video_extensions().begin(), video_extensions().end());
  const auto items = opt.shard.take(expand_inputs(opt.inputs, extensions, opt.out));
  const OutputDir out_dir(opt.out, "--out", opt.shard.suffix());
  const int64_t batch = fit_batch(
      opt.batch, vision::inference_bytes_per_image(model->config(), at::elementSize(loaded.dtype)), opt.model.device,
      "--batch");
  // --cuda-graph: the forward of a full batch, captured once (on zeros: it does not depend on them).
  std::unique_ptr<vision::GraphedForward> graphed;
  if (opt.cuda_graph) {
    SPARSESCOPE_CHECK(loaded.device.is_cuda(), "--cuda-graph needs a CUDA --device, not ", opt.model.device);
    SPARSESCOPE_CHECK(!opt.record && !opt.overlays,
                      "--cuda-graph: --record and --overlays read the attention on the host; run them without it");
    const auto& c = model->config();
    const c10::NoGradGuard no_grad;
    try {
      graphed = std::make_unique<vision::GraphedForward>(
          [&model](const at::Tensor& x) { return model->forward(x); },
          at::zeros({batch, c.in_chans, c.img_size, c.img_size}, at::TensorOptions(loaded.device).dtype(loaded.dtype)));
    } catch (const std::exception& e) {
      SPARSESCOPE_FAIL("--cuda-graph: the model's forward could not be captured as a CUDA graph (", error_text(e),
                       "); run without --cuda-graph");
    }
  }
  Predictions predictions((fs::path(opt.out) / opt.shard.file("predictions", ".jsonl")).string(), opt.force);
  BatchReport report(opt.shard);
  ProgressBar progress("infer", items.size());
  std::vector<Pending> pending;
  std::size_t frames = 0;
  const bool recording = opt.record || opt.overlays;
  const vision::OverlayStyle style = opt.overlay.style();
  vision::RecorderOptions record_options;
  record_options.budget = opt.record_budget;
  vision::Recorder recorder(record_options);
  auto finished = [&](const std::string& key) {
    const Artifacts files(opt.out, key);
    return predictions.done(key) && (!opt.record || fs::exists(files.trace)) &&
           (!opt.overlays || fs::exists(files.heads));
  };
  auto fail = [&](const std::string& item, const std::string& reason) {
    report.failed(item, reason);
    progress.print_line(report.last_failure_line());
  };

  // Writes the trace and overlays asked for; throws sparsescope::Error or a filesystem error.
  auto write_artifacts = [&](vision::Trace& trace, const Pending& p, const std::vector<vision::ClassScore>& topk) {
    const auto& config = model->config();
    trace.info = vision::vit_trace_info(config, loaded.method, p.source, p.frame);
    trace.info.topk = topk;
    trace.image = vision::denormalize_input(p.input, config.eval);
    const Artifacts files(opt.out, p.key);
    if (opt.record) {
      fs::create_directories(files.trace.parent_path());
      vision::save_trace(trace, files.trace.string());
    }
    if (opt.overlays) write_overlays(trace, files, style);
  };

  auto run_batch = [&] {
    if (pending.empty()) return;
    std::vector<at::Tensor> inputs;
    for (const auto& p : pending) inputs.push_back(p.input);
    c10::NoGradGuard no_grad;
    at::Tensor logits;
    std::vector<vision::Trace> traces;
    try {
      const at::Tensor x = at::stack(inputs).to(loaded.device, loaded.dtype);
      logits = graphed && graphed->matches(x) ? (*graphed)(x).clone() : model->forward(x, recording ? &recorder : nullptr);
      if (recording) traces = recorder.take();
    } catch (const std::exception& e) {
      recorder.take();  // drop what a failed pass left behind
      const std::string reason = batch_failure(e, pending.size(), opt.model.device);
      for (const auto& p : pending) fail(p.key, reason);
      pending.clear();
      return;
    }
    const auto finite = at::isfinite(logits.to(at::kFloat)).all(1).cpu();
    const auto top = vision::top_classes(logits, opt.topk, labels);
    for (size_t i = 0; i < pending.size(); ++i) {
      if (!finite[static_cast<int64_t>(i)].item<bool>()) {
        fail(pending[i].key, "the model's outputs are NaN or infinite (check the weights and --dtype)");
        continue;
      }
      try {
        if (recording) {
          write_artifacts(traces.at(i), pending[i], top[i]);
        }
      } catch (const std::exception& e) {
        fail(pending[i].key, e.what());
        continue;
      }
      auto line = pending[i].line;
      line["topk"] = top[i];
      if (!opt.json) print_prediction(line);
      predictions.add(line);
      frames += 1;
      if (pending[i].counts_as_input) report.succeeded();
    }
    pending.clear();
    predictions.flush();
  };
  auto enqueue = [&](std::string key, nlohmann::json line, const vision::Image& image, const Item& item,
                     std::int64_t frame) {
    line["key"] = key;
    pending.push_back({std::move(key), std::move(line), vision::vit_input(image, model->config()),
                       printable(item.source.string()), frame, frame < 0});
    if (static_cast<int64_t>(pending.size()) >= batch) run_batch();
  };

  for (const auto& item : items) {
    const std::string source = printable(item.source.string());
    try {
      if (!item.error.empty()) {
        fail(source, item.error);
      } else if (!is_video(item.source)) {
        if (finished(item.name)) {
          report.skipped();
        } else {
          enqueue(item.name, {{"input", item.name}, {"source", source}, {"frame", nullptr}},
                  vision::read_image(item.source.string()), item, -1);
        }
      } else {
        vision::VideoReader video(item.source.string(), opt.frames_every);
        vision::Image frame;
        std::int64_t index = 0;
        bool any_new = false;
        while (video.next(frame, &index)) {
          const std::string key = item.name + "#" + std::to_string(index);
          if (finished(key)) continue;
          any_new = true;
          enqueue(key, {{"input", item.name}, {"source", source}, {"frame", index}}, frame, item, index);
        }
        if (video.ended_early()) {
          fail(source, "the stream ended after " + std::to_string(video.frames_passed()) + " of the " +
                           std::to_string(video.info().frame_count) +
                           " frames its container announces (truncated or damaged); the frames read are kept");
        } else {
          any_new ? report.succeeded() : report.skipped();
        }
      }
    } catch (const std::exception& e) {
      fail(source, e.what());
    }
    progress.advance();
  }
  run_batch();
  predictions.flush();

  auto summary = report.summary(progress.elapsed_seconds());
  summary["images"] = frames;
  summary["images_per_second"] = progress.elapsed_seconds() > 0 ? frames / progress.elapsed_seconds() : 0.0;
  summary["model"] = loaded.name;
  summary["weights"] = printable(opt.model.weights);
  summary["device"] = opt.model.device;
  summary["dtype"] = opt.model.dtype;
  std::ostringstream line;
  line << summary["succeeded"] << " inputs done (" << frames << " images/frames), " << summary["skipped"]
       << " skipped (already done), " << summary["failed"] << " failed; predictions in "
       << (fs::path(opt.out) / opt.shard.file("predictions", ".jsonl")).string();
  return report.finish(out_dir, summary, opt.json, line.str());
}

}  // namespace

Command add_infer_command(CLI::App& app) {
  auto opt = std::make_shared<InferOptions>();
  auto* cmd = app.add_subcommand("infer", "Classify images, folders and video frames with a ViT-family model");
  cmd->footer(
      "Examples:\n"
      "  sparsescope infer --input assets/samples/fashion-mnist --out out/   # the bundled model\n"
      "  sparsescope infer --model deit_small_patch16_224 --weights deit_small.safetensors --input photos/ --out out/\n"
      "  sparsescope infer --model vit_small_patch16_224 --weights w.pth --input clip.mp4 --frames-every 10 \\\n"
      "      --device cuda --dtype bf16 --batch 64 --labels imagenet.txt --out out/ --json\n"
      "  sparsescope infer --model vit_small_patch16_224 --weights w.safetensors --input photos/ --out out/ \\\n"
      "      --record --overlays --colormap inferno\n"
      "Writes DIR/predictions.jsonl (one line per image or frame: input, frame, top-k classes and scores)\n"
      "and DIR/summary.json. --record adds DIR/traces/<input>.trace.safetensors (every attention map and\n"
      "statistic; see `sparsescope trace`), --overlays DIR/overlays/<input>.heads.png (each head's\n"
      "class-token attention in the last block) and <input>.rollout.png (attention rollout); video frames\n"
      "are named <input>.frame<N>. Finished images and frames (line and files present) are skipped unless\n"
      "--force; a bad file is reported and skipped; exit status 1 if any input failed, 2 for usage errors.");
  add_model_options(*cmd, opt->model);
  cmd->add_option("--input", opt->inputs, "Image files, video files and folders (searched recursively)")
      ->required();
  cmd->add_option("--out", opt->out, "Output directory")->required();
  add_shard_option(*cmd, opt->shard);
  cmd->add_option("--batch", opt->batch, "Images per forward pass")->check(CLI::Range(1, 4096));
  cmd->add_option("--topk", opt->topk, "Classes per prediction")->check(CLI::Range(1, 1000));
  cmd->add_option("--labels", opt->labels, "Class names, one per line, in class-index order");
  cmd->add_option("--frames-every", opt->frames_every, "Take every N-th frame of videos")->check(CLI::Range(1, 100000));
  cmd->add_flag("--force", opt->force, "Start over instead of resuming DIR/predictions.jsonl");
  cmd->add_flag("--json", opt->json, "Print the summary as JSON on stdout");
  cmd->add_flag("--record", opt->record, "Write a trace of every image or frame under DIR/traces");
  cmd->add_flag("--overlays", opt->overlays, "Draw attention overlays of every image or frame under DIR/overlays");
  cmd->add_flag("--cuda-graph", opt->cuda_graph,
                "CUDA: replay full batches' forward as a CUDA graph captured once (no per-operator launch cost); "
                "not with --record or --overlays");
  cmd->add_option("--record-budget", opt->record_budget,
                  "Cells per head kept at full resolution in traces; larger maps are mean-pooled to fit")
      ->check(kPositive);
  add_overlay_options(*cmd, opt->overlay);
  return [opt] { return run_infer(*opt); };
}

}  // namespace sparsescope::cli
