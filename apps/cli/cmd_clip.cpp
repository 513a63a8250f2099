// sparsescope clip tokenize TEXT...: CLIP's token ids as open_clip's tokenizer returns them (77 per
// text, <start_of_text> ... <end_of_text>, zero-padded; a text too long is cut and reported).
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "batch.h"
#include "commands.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/utf8.h"
#include "sparsescope/vlm/clip_tokenizer.h"
#include "sparsescope/vlm/clip_vocab.h"

namespace sparsescope::cli {

namespace {

struct ClipTokenizeOptions {
  std::vector<std::string> texts;
  std::string vocab;
  bool json = false;
};

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
  auto* clip = app.add_subcommand("clip", "CLIP tools (tokenize)");
  clip->require_subcommand(1);
  auto* tokenize = clip->add_subcommand("tokenize", "Token ids of texts, exactly as open_clip's tokenizer gives them");
  tokenize->footer(
      "Examples:\n"
      "  sparsescope clip tokenize \"a photo of a cat\" \"a photo of a dog\" --json\n"
      "Without --json, each text's ids up to its end token; with --json, the 77 ids of each (zero-padded) as\n"
      "{\"texts\": [{\"text\", \"ids\", \"tokens\", \"truncated\"}]}.");
  tokenize->add_option("texts", opt->texts, "Texts")->required();
  tokenize->add_option("--vocab", opt->vocab, "bpe_simple_vocab_16e6.txt.gz (default: $SPARSESCOPE_CLIP_VOCAB or ../shared/data/clip)");
  tokenize->add_flag("--json", opt->json, "Print JSON");
  return [opt] { return run_tokenize(*opt); };
}

}  // namespace sparsescope::cli
