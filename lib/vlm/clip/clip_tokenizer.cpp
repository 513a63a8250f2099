// open_clip's SimpleTokenizer (src/open_clip/tokenizer.py), clean 'lower'.
#include "sparsescope/vlm/clip_tokenizer.h"

#include <ATen/ATen.h>

#include <fstream>
#include <iterator>
#include <limits>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/gunzip.h"
#include "unicode.h"

namespace sparsescope::vlm {

using detail::append_utf8;
using detail::decode_utf8;

namespace {

constexpr int64_t kMerges = 49152 - 256 - 2;  // merges[1 : 49152 - 256 - 2 + 1]
constexpr std::size_t kMaxMergesFile = std::size_t{64} << 20;

// CLIP's bytes_to_unicode: printable bytes keep their code point, the others map to 256 + n.
std::vector<char32_t> byte_characters() {
  std::vector<char32_t> map(256, 0);
  std::vector<bool> printable(256, false);
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  int n = 0;
  for (int b = 0; b < 256; ++b) map[b] = printable[b] ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
  return map;
}

// The vocabulary's first 256 entries in bytes_to_unicode's dict order: printable bytes, then the rest.
std::vector<int> byte_order() {
  std::vector<int> order;
  for (int b = '!'; b <= '~'; ++b) order.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) order.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) order.push_back(b);
  for (int b = 0; b < 256; ++b) {
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) order.push_back(b);
  }
  return order;
}

std::string read_merges_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SPARSESCOPE_CHECK(in.good(), "CLIP vocabulary '", path, "' cannot be read");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (vision::is_gzip(bytes.data(), bytes.size())) bytes = vision::gunzip(bytes.data(), bytes.size(), path, kMaxMergesFile);
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

struct ClipTokenizer::Impl {
  std::vector<char32_t> byte_char;                     // byte -> its character
  std::unordered_map<char32_t, uint8_t> char_byte;     // and back
  std::unordered_map<std::string, int64_t> encoder;    // vocabulary entry (UTF-8) -> id
  std::vector<std::string> decoder;                    // id -> entry
  std::unordered_map<std::string, int64_t> ranks;      // "a b" -> merge rank
  int64_t sot = 0, eot = 0;
  mutable std::mutex cache_lock;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache;  // piece -> ids

  // open_clip's bpe(): merge the lowest-ranked adjacent pair everywhere until none is listed.
  std::vector<int64_t> bpe(const std::string& piece) const {
    {
      const std::lock_guard<std::mutex> lock(cache_lock);
      const auto it = cache.find(piece);
      if (it != cache.end()) return it->second;
    }
    std::vector<std::string> word;
    for (const char32_t c : decode_utf8(piece, "BPE piece")) {
      std::string symbol;
      append_utf8(symbol, c);
      word.push_back(symbol);
    }
    word.back() += "</w>";
    while (word.size() > 1) {
      int64_t best = std::numeric_limits<int64_t>::max();
      std::string first, second;
      for (std::size_t i = 0; i + 1 < word.size(); ++i) {
        const auto it = ranks.find(word[i] + " " + word[i + 1]);
        if (it != ranks.end() && it->second < best) {
          best = it->second;
          first = word[i];
          second = word[i + 1];
        }
      }
      if (best == std::numeric_limits<int64_t>::max()) break;
      std::vector<std::string> merged;
      for (std::size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
          merged.push_back(first + second);
          i += 2;
        } else {
          merged.push_back(word[i++]);
        }
      }
      word = std::move(merged);
    }
    std::vector<int64_t> ids;
    for (const auto& symbol : word) {
      const auto it = encoder.find(symbol);
      SPARSESCOPE_CHECK(it != encoder.end(), "CLIP tokenizer: '", symbol, "' is not in the vocabulary");
      ids.push_back(it->second);
    }
    const std::lock_guard<std::mutex> lock(cache_lock);
    cache.emplace(piece, ids);
    return ids;
  }

  void add_piece(const std::u32string& text, std::size_t begin, std::size_t end, std::vector<int64_t>& out) const {
    std::string piece;
    for (const char unit : detail::encode_utf8(text.substr(begin, end - begin))) {
      append_utf8(piece, byte_char[static_cast<uint8_t>(unit)]);
    }
    const std::vector<int64_t> ids = bpe(piece);
    out.insert(out.end(), ids.begin(), ids.end());
  }
};

ClipTokenizer::ClipTokenizer(const std::string& merges_path) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.byte_char = byte_characters();
  for (int b = 0; b < 256; ++b) m.char_byte[m.byte_char[b]] = static_cast<uint8_t>(b);
  std::istringstream lines(read_merges_text(merges_path));
  std::string line;
  std::getline(lines, line);  // the header ("#version: 0.2")
  std::vector<std::pair<std::string, std::string>> merges;
  while (static_cast<int64_t>(merges.size()) < kMerges && std::getline(lines, line)) {
    const std::size_t space = line.find(' ');
    SPARSESCOPE_CHECK(space != std::string::npos && space > 0 && space + 1 < line.size() &&
                          line.find(' ', space + 1) == std::string::npos,
                      "CLIP vocabulary '", merges_path, "': line ", merges.size() + 2, " is not a merge 'a b'");
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  SPARSESCOPE_CHECK(!merges.empty(), "CLIP vocabulary '", merges_path, "' holds no merges");
  auto add = [&m](const std::string& entry) {
    m.encoder.emplace(entry, static_cast<int64_t>(m.decoder.size()));
    m.decoder.push_back(entry);
  };
  const std::vector<int> order = byte_order();
  for (const int b : order) {
    std::string s;
    append_utf8(s, m.byte_char[b]);
    add(s);
  }
  for (const int b : order) {
    std::string s;
    append_utf8(s, m.byte_char[b]);
    add(s + "</w>");
  }
  for (std::size_t r = 0; r < merges.size(); ++r) {
    add(merges[r].first + merges[r].second);
    m.ranks.emplace(merges[r].first + " " + merges[r].second, static_cast<int64_t>(r));
  }
  m.sot = static_cast<int64_t>(m.decoder.size());
  add("<start_of_text>");
  m.eot = static_cast<int64_t>(m.decoder.size());
  add("<end_of_text>");
}

ClipTokenizer::~ClipTokenizer() = default;
ClipTokenizer::ClipTokenizer(ClipTokenizer&&) noexcept = default;
ClipTokenizer& ClipTokenizer::operator=(ClipTokenizer&&) noexcept = default;

int64_t ClipTokenizer::start_token() const { return impl_->sot; }
int64_t ClipTokenizer::end_token() const { return impl_->eot; }
int64_t ClipTokenizer::vocab_size() const { return static_cast<int64_t>(impl_->decoder.size()); }

// The pattern, tried in its order at each position (regex.findall):
// <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
std::vector<int64_t> ClipTokenizer::encode(const std::string& text) const {
  const std::u32string t = decode_utf8(clip_clean_text(text), "CLIP text");
  std::vector<int64_t> ids;
  auto starts_with = [&t](std::size_t i, const std::u32string& s) { return t.compare(i, s.size(), s) == 0; };
  std::size_t i = 0;
  while (i < t.size()) {
    bool special = false;
    for (const std::u32string& s : {std::u32string(U"<start_of_text>"), std::u32string(U"<end_of_text>")}) {
      if (starts_with(i, s)) {
        ids.push_back(s == U"<start_of_text>" ? impl_->sot : impl_->eot);
        i += s.size();
        special = true;
        break;
      }
    }
    if (special) continue;
    bool contraction = false;
    for (const char32_t* c : {U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"}) {
      const std::u32string s(c);
      if (starts_with(i, s)) {
        impl_->add_piece(t, i, i + s.size(), ids);
        i += s.size();
        contraction = true;
        break;
      }
    }
    if (contraction) continue;
    std::size_t j = i;
    if (detail::is_letter(t[i])) {
      while (j < t.size() && detail::is_letter(t[j])) ++j;
    } else if (detail::is_number(t[i])) {
      j = i + 1;
    } else if (!detail::is_regex_space(t[i])) {
      while (j < t.size() && !detail::is_regex_space(t[j]) && !detail::is_letter(t[j]) && !detail::is_number(t[j])) ++j;
    } else {
      ++i;  // whitespace belongs to no piece
      continue;
    }
    impl_->add_piece(t, i, j, ids);
    i = j;
  }
  return ids;
}

at::Tensor ClipTokenizer::tokenize(const std::vector<std::string>& texts, int64_t context_length) const {
  SPARSESCOPE_CHECK(context_length >= 2, "CLIP tokenizer: the context must hold at least the start and end tokens, got ",
                    context_length);
  at::Tensor out = at::zeros({static_cast<int64_t>(texts.size()), context_length}, at::kLong);
  auto rows = out.accessor<int64_t, 2>();
  for (std::size_t r = 0; r < texts.size(); ++r) {
    std::vector<int64_t> ids{impl_->sot};
    const std::vector<int64_t> body = encode(texts[r]);
    ids.insert(ids.end(), body.begin(), body.end());
    ids.push_back(impl_->eot);
    if (static_cast<int64_t>(ids.size()) > context_length) {
      ids.resize(static_cast<std::size_t>(context_length));
      ids.back() = impl_->eot;
    }
    for (std::size_t c = 0; c < ids.size(); ++c) rows[static_cast<int64_t>(r)][static_cast<int64_t>(c)] = ids[c];
  }
  return out;
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  for (const int64_t id : ids) {
    SPARSESCOPE_CHECK(id >= 0 && id < vocab_size(), "CLIP tokenizer: id ", id, " is outside the vocabulary of ",
                      vocab_size());
    for (const char32_t c : decode_utf8(impl_->decoder[static_cast<std::size_t>(id)], "vocabulary entry")) {
      const auto it = impl_->char_byte.find(c);
      SPARSESCOPE_CHECK(it != impl_->char_byte.end(), "CLIP tokenizer: id ", id, " holds a character outside the byte map");
      bytes.push_back(static_cast<char>(it->second));
    }
  }
  // bytes.decode('utf-8', errors='replace'), then '</w>' -> ' '.
  std::string text;
  for (std::size_t i = 0; i < bytes.size();) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    const std::size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
    try {
      decode_utf8(bytes.substr(i, n), "decoded text");  // one whole, valid character
      text += bytes.substr(i, n);
      i += n;
    } catch (const Error&) {
      text += "\xEF\xBF\xBD";
      ++i;
    }
  }
  for (std::size_t at = text.find("</w>"); at != std::string::npos; at = text.find("</w>", at + 1)) {
    text.replace(at, 4, " ");
  }
  return text;
}

}  // namespace sparsescope::vlm
