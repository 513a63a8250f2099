// sparsescope infer: classify images, folders and video frames with a ViT-family model; one JSON
// line per image or frame in DIR/predictions.jsonl, rewritten atomically after every batch so an
// interrupted run loses at most one batch and resumes where it stopped.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "batch.h"
#include "commands.h"
#include "model_options.h"
#include "progress.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/atomic_file.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/video.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::cli {

namespace fs = std::filesystem;

namespace {

struct InferOptions {
  ModelOptions model;
  std::vector<std::string> inputs;
  std::string out;
  int batch = 16;
  int topk = 5;
  std::string labels;
  int frames_every = 30;
  bool force = false;
  bool json = false;
};

const std::vector<std::string>& video_extensions() {
  static const std::vector<std::string> extensions{".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"};
  return extensions;
}

bool is_video(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::find(video_extensions().begin(), video_extensions().end(), ext) != video_extensions().end();
}

std::vector<std::string> read_labels(const std::string& path) {
  if (path.empty()) return {};
  std::ifstream in(path);
  SPARSESCOPE_CHECK(in.good(), "--labels: cannot read '", path, "'");
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) labels.push_back(line);
  return labels;
}

// One image or video frame waiting for its batch.
struct Pending {
  std::string key;  // "name" or "name#frame"
  nlohmann::json line;
  at::Tensor input;  // [3, S, S]
};

class Predictions {
 public:
  Predictions(std::string path, bool force) : path_(std::move(path)) {
    if (force || !fs::exists(path_)) return;
    std::ifstream in(path_);
    for (std::string text; std::getline(in, text);) {
      if (text.empty()) continue;
      const auto line = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      SPARSESCOPE_CHECK(!line.is_discarded() && line.contains("key"), "'", path_,
                        "' has a line that is not a prediction; move it away or pass --force");
      done_.insert(line["key"].get<std::string>());
      lines_.push_back(text);
    }
  }
  bool done(const std::string& key) const { return done_.count(key) > 0; }
  void add(const nlohmann::json& line) {
    done_.insert(line["key"].get<std::string>());
    lines_.push_back(line.dump());
  }
  void flush() const {
    vision::write_file_atomically(path_, [&](std::ostream& out) {
      for (const auto& l : lines_) out << l << "\n";
    });
  }

 private:
  std::string path_;
  std::set<std::string> done_;
  std::vector<std::string> lines_;
};

int run_infer(const InferOptions& opt) {
  LoadedModel loaded = load_model(opt.model);  // usage errors (name, weights, device) throw: exit 2
  auto& model = loaded.model;
  SPARSESCOPE_CHECK(model->config().num_classes > 0, "--model ", opt.model.name,
                    " has no classification head (a backbone); there is nothing to predict");
  const auto labels = read_labels(opt.labels);
  SPARSESCOPE_CHECK(labels.empty() || static_cast<int64_t>(labels.size()) == model->config().num_classes,
                    "--labels: '", opt.labels, "' has ", labels.size(), " lines, the model has ",
                    model->config().num_classes, " classes");
  const int topk = static_cast<int>(std::min<int64_t>(opt.topk, model->config().num_classes));

  std::vector<std::string> extensions = image_extensions();
  extensions.insert(extensions.end(), video_extensions().begin(), video_extensions().end());
  const auto items = expand_inputs(opt.inputs, extensions);
  fs::create_directories(opt.out);
  Predictions predictions((fs::path(opt.out) / "predictions.jsonl").string(), opt.force);
  BatchReport report;
  ProgressBar progress("infer", items.size());
  std::vector<Pending> pending;
  std::size_t frames = 0;

  auto run_batch = [&] {
    if (pending.empty()) return;
    std::vector<at::Tensor> inputs;
    for (const auto& p : pending) inputs.push_back(p.input);
    c10::NoGradGuard no_grad;
    const auto logits = model->forward(at::stack(inputs).to(loaded.device, loaded.dtype));  // [B, C]
    const auto [scores, classes] = logits.to(at::kFloat).softmax(-1).topk(topk);
    const auto s = scores.cpu();
    const auto c = classes.cpu();
    for (size_t i = 0; i < pending.size(); ++i) {
      auto line = pending[i].line;
      line["topk"] = nlohmann::json::array();
      for (int j = 0; j < topk; ++j) {
        const int64_t cls = c[i][j].item<int64_t>();
        nlohmann::json entry = {{"class", cls}, {"score", s[i][j].item<float>()}};
        if (!labels.empty()) entry["label"] = labels[cls];
        line["topk"].push_back(entry);
      }
      predictions.add(line);
      frames += 1;
    }
    pending.clear();
    predictions.flush();
  };
  auto enqueue = [&](std::string key, nlohmann::json line, const vision::Image& image) {
    line["key"] = key;
    pending.push_back({std::move(key), std::move(line), vision::eval_transform(image, model->config().eval)});
    if (static_cast<int>(pending.size()) >= opt.batch) run_batch();
  };

  for (const auto& item : items) {
    try {
      if (!is_video(item.source)) {
        if (predictions.done(item.name)) {
          report.skipped();
        } else {
          enqueue(item.name, {{"input", item.name}, {"source", item.source.string()}, {"frame", nullptr}},
                  vision::read_image(item.source.string()));
          report.succeeded();
        }
      } else {
        vision::VideoReader video(item.source.string(), opt.frames_every);
        vision::Image frame;
        std::int64_t index = 0;
        bool any_new = false;
        while (video.next(frame, &index)) {
          const std::string key = item.name + "#" + std::to_string(index);
          if (predictions.done(key)) continue;
          any_new = true;
          enqueue(key, {{"input", item.name}, {"source", item.source.string()}, {"frame", index}}, frame);
        }
        any_new ? report.succeeded() : report.skipped();
      }
    } catch (const sparsescope::Error& e) {
      report.failed(item.source.string(), e.what());
      progress.print_line(report.last_failure_line());
    }
    progress.advance();
  }
  run_batch();
  predictions.flush();

  auto summary = report.summary(progress.elapsed_seconds());
  summary["images"] = frames;
  summary["images_per_second"] = progress.elapsed_seconds() > 0 ? frames / progress.elapsed_seconds() : 0.0;
  summary["model"] = opt.model.name;
  summary["device"] = opt.model.device;
  summary["dtype"] = opt.model.dtype;
  const std::string text = summary.dump(2) + "\n";
  vision::write_file_atomically((fs::path(opt.out) / "summary.json").string(), text.data(), text.size());
  if (opt.json) {
    std::cout << text;
  } else {
    std::cerr << summary["succeeded"] << " inputs done (" << frames << " images/frames), " << summary["skipped"]
              << " skipped (already done), " << summary["failed"] << " failed; predictions in "
              << (fs::path(opt.out) / "predictions.jsonl").string() << "\n";
  }
  return report.exit_status();
}

}  // namespace

Command add_infer_command(CLI::App& app) {
  auto opt = std::make_shared<InferOptions>();
  auto* cmd = app.add_subcommand("infer", "Classify images, folders and video frames with a ViT-family model");
  cmd->footer(
      "Examples:\n"
      "  sparsescope infer --model deit_small_patch16_224 --weights deit_small.safetensors --input photos/ --out out/\n"
      "  sparsescope infer --model vit_small_patch16_224 --weights w.pth --input clip.mp4 --frames-every 10 \\\n"
      "      --device cuda --dtype bf16 --batch 64 --labels imagenet.txt --out out/ --json\n"
      "Writes DIR/predictions.jsonl (one line per image or frame: input, frame, top-k classes and scores)\n"
      "and DIR/summary.json. Finished images and frames are skipped unless --force; a bad file is reported\n"
      "and skipped; exit status 1 if any input failed, 2 for usage errors.");
  add_model_options(*cmd, opt->model);
  cmd->add_option("--input", opt->inputs, "Image files, video files and folders (searched recursively)")
      ->required();
  cmd->add_option("--out", opt->out, "Output directory")->required();
  cmd->add_option("--batch", opt->batch, "Images per forward pass")->check(CLI::Range(1, 4096));
  cmd->add_option("--topk", opt->topk, "Classes per prediction")->check(CLI::Range(1, 1000));
  cmd->add_option("--labels", opt->labels, "Class names, one per line, in class-index order");
  cmd->add_option("--frames-every", opt->frames_every, "Take every N-th frame of videos")->check(CLI::Range(1, 100000));
  cmd->add_flag("--force", opt->force, "Start over instead of resuming DIR/predictions.jsonl");
  cmd->add_flag("--json", opt->json, "Print the summary as JSON on stdout");
  return [opt] { return run_infer(*opt); };
}

}  // namespace sparsescope::cli
