// sparsescope clip tokenize TEXT...: CLIP's token ids as open_clip's tokenizer returns them (77 per
// text, <start_of_text> ... <end_of_text>, zero-padded; a text too long is cut and reported).
// sparsescope clip --images ... --texts ...: each image's probabilities over the texts (softmax of
// logit_scale.exp() times the cosine similarities, as CLIP's zero-shot inference).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iomanip>
#include <optional>
#include <set>
#include <iostream>
#include <nlohmann/json.hpp>

#include "batch.h"
#include "commands.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/output_dir.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/vit_trace.h"
#include "sparsescope/vision/train_loop.h"
#include "sparsescope/vision/utf8.h"
#include "sparsescope/vlm/clip.h"
#include "sparsescope/vlm/clip_trace.h"
#include "sparsescope/vlm/clip_tokenizer.h"
#include "sparsescope/vlm/clip_vocab.h"

namespace sparsescope::cli {

namespace fs = std::filesystem;

namespace {

struct ClipTokenizeOptions {
  std::vector<std::string> texts;
  std::string vocab;
  bool json = false;
};

struct ClipMatchOptions {
  std::string weights = SPARSESCOPE_DEFAULT_CLIP_WEIGHTS, model, vocab, device = "cpu", record;
  std::vector<std::string> images, texts;
  bool json = false;
};

int run_match(const ClipMatchOptions& o) {
  SPARSESCOPE_CHECK(!o.images.empty() && !o.texts.empty(), "clip: give --images and --texts (or the tokenize subcommand)");
  for (const auto& text : o.texts) {
    SPARSESCOPE_CHECK(vision::is_utf8(text), "--texts: '", printable(text), "' is not UTF-8");
  }
  if (!o.record.empty()) {  // one trace per image, named after it: the names must differ
    std::set<std::string> names;
    for (const auto& path : o.images) {
      SPARSESCOPE_CHECK(names.insert(fs::path(path).filename().string()).second, "--record: two images are named '",
                        printable(fs::path(path).filename().string()), "'; their traces would overwrite each other");
    }
  }
  std::optional<vision::OutputDir> record_dir;
  if (!o.record.empty()) record_dir.emplace(o.record, "--record");
  const vlm::ClipTokenizer tokenizer(vlm::clip_vocab_path(o.vocab));
  vlm::CLIP model{nullptr};
  try {
    model = vlm::load_clip(o.weights, o.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--weights: ", e.what());
  }
  const at::Device device = vision::training_device(o.device);
  model->to(device);
  const vision::EvalTransform transform = vlm::clip_eval_transform(model->config());
  at::NoGradGuard no_grad;
  const int64_t context = model->config().context_length;
  for (size_t i = 0; i < o.texts.size(); ++i) {
    const auto tokens = static_cast<int64_t>(tokenizer.encode(o.texts[i]).size()) + 2;
    if (tokens > context) std::cerr << "note: text " << i + 1 << " has " << tokens << " tokens; cut to " << context << "\n";
  }
  const at::Tensor text = model->encode_text(tokenizer.tokenize(o.texts, context).to(device), true);
  const double scale = model->logit_scale().exp().item<double>();
  nlohmann::json out = {{"texts", o.texts}, {"logit_scale", scale}, {"images", nlohmann::json::array()}};
  int failed = 0;
  for (const auto& path : o.images) {
    at::Tensor probs, cosine;
    try {
      const at::Tensor input = vision::eval_transform(vision::read_image(path), transform).unsqueeze(0).to(device);
      vision::Recorder recorder;
      cosine = at::matmul(model->encode_image(input, true, o.record.empty() ? nullptr : &recorder), text.t()).squeeze(0).cpu();
      probs = at::softmax(scale * cosine, 0);
      if (!o.record.empty()) {
        vision::Trace trace = std::move(recorder.take().front());
        trace.info = vlm::clip_trace_info(model->config(), path);
        const at::Tensor order = std::get<1>(probs.sort(0, /*descending=*/true));
        for (int64_t k = 0; k < order.size(0); ++k) {
          const int64_t t = order[k].item<int64_t>();
          trace.info.topk.push_back({t, probs[t].item<float>(), o.texts[static_cast<size_t>(t)]});
        }
        trace.image = vision::denormalize_input(input[0], transform);
        vision::save_trace(trace, (fs::path(o.record) / (fs::path(path).filename().string() + ".trace.safetensors")).string());
      }
    } catch (const std::exception& e) {
      std::cerr << "skipped " << printable(path) << ": " << error_text(e) << "\n";
      out["failures"].push_back({{"image", printable(path)}, {"error", error_text(e)}});
      ++failed;
      continue;
    }
    const int64_t best = probs.argmax().item<int64_t>();
    nlohmann::json entry = {{"image", printable(path)}, {"best", o.texts[static_cast<size_t>(best)]},
                            {"probabilities", std::vector<double>(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel())},
                            {"cosine", std::vector<double>(cosine.data_ptr<float>(), cosine.data_ptr<float>() + cosine.numel())}};
    out["images"].push_back(entry);
    if (!o.json) {  // the best text, then the table
      std::cout << printable(path) << ": " << printable(o.texts[static_cast<size_t>(best)]) << "\n" << std::fixed;
      for (size_t t = 0; t < o.texts.size(); ++t) {
        const auto i = static_cast<int64_t>(t);
        std::cout << "  " << std::setprecision(3) << probs[i].item<double>() << "  cosine " << std::setprecision(4)
                  << cosine[i].item<double>() << "  " << printable(o.texts[t]) << "\n";
      }
    }
  }
  if (o.json) std::cout << out.dump(2) << "\n";
  if (failed) std::cerr << failed << " of " << o.images.size() << " images failed\n";
  return failed ? 1 : 0;
}

int run_tokenize(const ClipTokenizeOptions& o) {
  for (const auto& text : o.texts) {
    SPARSESCOPE_CHECK(vision::is_utf8(text), "text '", printable(text), "' is not UTF-8");
  }
  const vlm::ClipTokenizer tokenizer(vlm::clip_vocab_path(o.vocab));
  const at::Tensor ids = tokenizer.tokenize(o.texts);
  nlohmann::json out = {{"texts", nlohmann::json::array()}};
  for (std::size_t i = 0; i < o.texts.size(); ++i) {
    const int64_t length = static_cast<int64_t>(tokenizer.encode(o.texts[i]).size()) + 2;
    std::vector<int64_t> row(ids[static_cast<int64_t>(i)].data_ptr<int64_t>(),
                             ids[static_cast<int64_t>(i)].data_ptr<int64_t>() + ids.size(1));
    nlohmann::json entry = {{"text", o.texts[i]}, {"ids", row}, {"tokens", length}};
    if (length > ids.size(1)) {
      entry["truncated"] = true;
      std::cerr << "note: text " << i + 1 << " has " << length << " tokens; cut to " << ids.size(1) << "\n";
    }
    out["texts"].push_back(entry);
    if (!o.json) {
      std::cout << printable(o.texts[i]) << ":";
      for (int64_t c = 0; c < std::min<int64_t>(length, ids.size(1)); ++c) std::cout << " " << row[static_cast<std::size_t>(c)];
      std::cout << "\n";
    }
  }
  if (o.json) std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace

Command add_clip_command(CLI::App& app) {
  auto opt = std::make_shared<ClipTokenizeOptions>();
  auto* clip = app.add_subcommand("clip", "CLIP: images against texts (--images, --texts), or tokenize");
  clip->require_subcommand(0, 1);
  auto* tokenize = clip->add_subcommand("tokenize", "Token ids of texts, exactly as open_clip's tokenizer gives them");
  tokenize->footer(
      "Examples:\n"
      "  sparsescope clip tokenize \"a photo of a cat\" \"a photo of a dog\" --json\n"
      "Without --json, each text's ids up to its end token; with --json, the 77 ids of each (zero-padded) as\n"
      "{\"texts\": [{\"text\", \"ids\", \"tokens\", \"truncated\"}]}.");
  tokenize->add_option("texts", opt->texts, "Texts")->required();
  tokenize->add_option("--vocab", opt->vocab, "bpe_simple_vocab_16e6.txt.gz (default: $SPARSESCOPE_CLIP_VOCAB or ../shared/data/clip)");
  tokenize->add_flag("--json", opt->json, "Print JSON");

  auto m = std::make_shared<ClipMatchOptions>();
  clip->footer(
      "Examples:\n"
      "  sparsescope clip --images cat.jpg dog.jpg --texts \"a cat\" \"a dog\"      # the bundled clip_tiny\n"
      "  sparsescope clip --weights open_clip_model.safetensors --model ViT-B-32 --images a.png --texts x y --json\n"
      "  sparsescope clip tokenize \"a photo of a cat\"\n"
      "Per image its best text, then its probability (softmax of logit_scale times the cosines) and cosine\n"
      "similarity for every text. Images that cannot be read are reported and skipped (exit status 1);\n"
      "texts longer than the context are cut as open_clip cuts them, and reported.");
  clip->add_option("--weights", m->weights, "CLIP weights: ours (with its card), or open_clip / OpenAI state dicts with --model "
                   "(default: the bundled clip_tiny)");
  clip->add_option("--model", m->model, "The configuration of weights without a card (e.g. ViT-B-32, ViT-B-32-quickgelu for OpenAI's)");
  clip->add_option("--images", m->images, "Image files");
  clip->add_option("--texts", m->texts, "Texts to match");
  clip->add_option("--vocab", m->vocab, "bpe_simple_vocab_16e6.txt.gz (default: $SPARSESCOPE_CLIP_VOCAB or ../shared/data/clip)");
  clip->add_option("--device", m->device, "cpu, cuda or cuda:N");
  clip->add_option("--record", m->record, "Folder for a trace of each image's attention (the image tower), texts as its top-k");
  clip->add_flag("--json", m->json, "Print JSON");
  return [opt, m, tokenize] { return tokenize->parsed() ? run_tokenize(*opt) : run_match(*m); };
}

}  // namespace sparsescope::cli
