// sparsescope dclip --teacher T --image IMG --boxes "x1,y1,x2,y2;..." --texts ...: DCLIP's teacher
// between each text's tokens and the image's regions (lib/vlm/dclip): per word the region it attends
// most and per region the word, averaged over the heads; --record writes each text's trace (a cross
// layout the viewer shows: click a word to see its regions, a region to see its words).
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "batch.h"
#include "commands.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/output_dir.h"
#include "sparsescope/vision/train_loop.h"
#include "sparsescope/vision/utf8.h"
#include "sparsescope/vlm/clip.h"
#include "sparsescope/vlm/clip_data.h"
#include "sparsescope/vlm/clip_vocab.h"
#include "sparsescope/vlm/dclip_trace.h"

namespace sparsescope::cli {

namespace fs = std::filesystem;

namespace {

struct DclipOptions {
  std::string teacher = SPARSESCOPE_DEFAULT_DCLIP_TEACHER, weights = SPARSESCOPE_DEFAULT_CLIP_WEIGHTS, model, vocab, device = "cpu", image, boxes, record;
  std::vector<std::string> texts;
  bool json = false;
};

// [rows, columns] as nested lists.
nlohmann::json matrix(const at::Tensor& m) {
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t i = 0; i < m.size(0); ++i) {
    const at::Tensor row = m[i].contiguous();
    rows.push_back(std::vector<double>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel()));
  }
  return rows;
}

// "  <name>: <best column> (<weight>)" per row of `m` [rows, columns].
void print_best(const std::string& title, const std::vector<std::string>& rows, const std::vector<std::string>& columns,
                const at::Tensor& m) {
  std::cout << "  " << title << ":\n" << std::fixed << std::setprecision(2);
  for (size_t i = 0; i < rows.size(); ++i) {
    const at::Tensor row = m[static_cast<int64_t>(i)];
    const int64_t best = row.argmax().item<int64_t>();
    std::cout << "    " << rows[i] << " -> " << columns[static_cast<size_t>(best)] << " (" << row[best].item<double>() << ")\n";
  }
}

int run_dclip(const DclipOptions& o) {
  for (const auto& text : o.texts) SPARSESCOPE_CHECK(vision::is_utf8(text), "--texts: '", printable(text), "' is not UTF-8");
  std::vector<std::array<int, 4>> boxes;
  try {
    boxes = vlm::parse_region_boxes(o.boxes);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--boxes: ", e.what());
  }
  SPARSESCOPE_CHECK(!boxes.empty(), "--boxes: give at least one region, as x1,y1,x2,y2;x1,y1,x2,y2...");
  std::optional<vision::OutputDir> record_dir;
  if (!o.record.empty()) record_dir.emplace(o.record, "--record");
  const vlm::ClipTokenizer tokenizer(vlm::clip_vocab_path(o.vocab));
  vlm::CLIP clip{nullptr};
  vlm::DclipTeacher teacher{nullptr};
  try {
    clip = vlm::load_clip(o.weights, o.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--weights: ", e.what());
  }
  try {
    teacher = vlm::load_dclip_teacher(o.teacher);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--teacher: ", e.what());
  }
  const at::Device device = vision::training_device(o.device);
  clip->to(device);
  clip->eval();
  teacher->to(device);
  const vision::Image image = vision::read_image(o.image);
  std::vector<std::string> regions;
  for (const auto& b : boxes) {
    regions.push_back(std::to_string(b[0]) + "," + std::to_string(b[1]) + "," + std::to_string(b[2]) + "," + std::to_string(b[3]));
  }
  nlohmann::json out = {{"image", printable(o.image)}, {"boxes", boxes}, {"heads", teacher->config().heads},
                        {"texts", nlohmann::json::array()}};
  for (size_t t = 0; t < o.texts.size(); ++t) {
    const vision::Trace trace = vlm::record_dclip_teacher(clip, teacher, tokenizer, image, boxes, o.texts[t], o.image);
    const at::Tensor to_regions = trace.site("cross_modal_attention.text_to_image").probs.mean(0);  // [W, R]
    const at::Tensor to_words = trace.site("cross_modal_attention.image_to_text").probs.mean(0);    // [R, W]
    const std::vector<std::string>& words = trace.info.layout.words;
    nlohmann::json entry = {{"text", o.texts[t]}, {"words", words}, {"text_to_image", matrix(to_regions)},
                            {"image_to_text", matrix(to_words)}};
    if (record_dir) {
      const fs::path path = fs::path(o.record) / (fs::path(o.image).filename().string() + "." + std::to_string(t + 1) +
                                                  ".trace.safetensors");
      vision::save_trace(trace, path.string());
      entry["trace"] = printable(path.string());
    }
    out["texts"].push_back(entry);
    if (!o.json) {
      std::cout << printable(o.image) << ", \"" << printable(o.texts[t]) << "\" (mean of " << teacher->config().heads
                << " heads):\n";
      print_best("word -> region", words, regions, to_regions);
      print_best("region -> word", regions, words, to_words);
    }
  }
  if (o.json) std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace

Command add_dclip_command(CLI::App& app) {
  auto o = std::make_shared<DclipOptions>();
  auto* cmd = app.add_subcommand("dclip", "DCLIP's teacher: cross-attention between a caption's words and an image's regions");
  cmd->footer(
      "Examples:\n"
      "  sparsescope dclip --image photo.jpg --boxes \"10,20,200,180;150,40,400,300\" --texts \"a dog on a couch\" \\\n"
      "      --record traces/          # the bundled teacher on the bundled clip_tiny\n"
      "  sparsescope dclip --teacher run/model.safetensors --weights my_clip.safetensors --image a.png --boxes ... --texts ...\n"
      "Per text, each word's most attended region and each region's most attended word (the teacher's\n"
      "attention averaged over its heads); --json gives the whole [words x regions] and [regions x words]\n"
      "maps. Boxes are pixels of the image, clipped to it; one outside it is an error. With --record,\n"
      "DIR/<image>.<k>.trace.safetensors per text: open it in sparsescope-viewer.");
  cmd->add_option("--image", o->image, "Image file")->required();
  cmd->add_option("--boxes", o->boxes, "Regions as x1,y1,x2,y2;x1,y1,x2,y2... in the image's pixels")->required();
  cmd->add_option("--texts", o->texts, "Captions")->required();
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--teacher", o->teacher, "A trained teacher (sparsescope train --task dclip-teacher; default: the bundled "
                  "one, trained on the bundled clip_tiny)");
  cmd->add_option("--weights", o->weights, "The CLIP the teacher was trained on (default: the bundled clip_tiny)");
  cmd->add_option("--model", o->model, "The CLIP configuration of weights without a card");
  cmd->add_option("--vocab", o->vocab, "bpe_simple_vocab_16e6.txt.gz (default: $SPARSESCOPE_CLIP_VOCAB or ../shared/data/clip)");
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N");
  cmd->add_option("--record", o->record, "Folder for each text's trace (the viewer shows it)");
  cmd->add_flag("--json", o->json, "Print JSON");
  return [o] { return run_dclip(*o); };
}

}  // namespace sparsescope::cli
