#pragma once
// CLIP's byte-pair tokenizer exactly as open_clip's SimpleTokenizer runs it (clean 'lower'): the
// text cleaned (HTML references resolved twice, whitespace collapsed, lower case), split by its
// pattern (special tokens, English contractions, runs of letters, single digits, runs of other
// symbols), each piece's UTF-8 bytes mapped to printable characters and merged by the BPE ranks
// of bpe_simple_vocab_16e6.txt.gz; <start_of_text> ... <end_of_text> padded with 0 to the context.
// Not applied: ftfy.fix_text's repairs other than its quote uncurling (mojibake, ligatures,
// full-width forms, NFC); text that needs them can tokenize differently (ASCII never does).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sparsescope::vlm {

/// open_clip's clean 'lower' for one text: ftfy's quote uncurling, html.unescape twice, strip,
/// whitespace runs to one space, str.lower(). Invalid UTF-8 throws sparsescope::Error.
std::string clip_clean_text(const std::string& text);

class ClipTokenizer {
 public:
  static constexpr int64_t kContextLength = 77;

  /// Reads the BPE merges (gzip-compressed or plain text: a header line, then "a b" per merge; the
  /// first 48,894 are used as open_clip does). Throws sparsescope::Error naming the file.
  explicit ClipTokenizer(const std::string& merges_path);
  ~ClipTokenizer();
  ClipTokenizer(ClipTokenizer&&) noexcept;
  ClipTokenizer& operator=(ClipTokenizer&&) noexcept;

  /// The BPE ids of the cleaned text, without start and end tokens.
  std::vector<int64_t> encode(const std::string& text) const;
  /// open_clip's tokenizer(texts): int64 [N, context_length], each row <start_of_text>, the ids and
  /// <end_of_text>, then 0; a text too long is cut and ends with <end_of_text>.
  at::Tensor tokenize(const std::vector<std::string>& texts, int64_t context_length = kContextLength) const;
  /// The text of `ids` (open_clip's decode: "</w>" becomes a space, invalid UTF-8 U+FFFD).
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t start_token() const;
  int64_t end_token() const;
  int64_t vocab_size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparsescope::vlm
