#include "unicode.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vlm::detail {

namespace {

struct CodeRange {
  uint32_t first, last;
};
struct LowerEntry {
  uint32_t code;
  const char* utf8;
};
struct NamedReference {
  const char* name;
  const char* utf8;
};
struct InvalidCharref {
  uint32_t code;
  const char* utf8;
};

#include "text_tables.inc"

template <std::size_t N>
bool in(const CodeRange (&ranges)[N], char32_t c) {
  const auto it = std::upper_bound(std::begin(ranges), std::end(ranges), static_cast<uint32_t>(c),
                                   [](uint32_t v, const CodeRange& r) { return v < r.first; });
  return it != std::begin(ranges) && static_cast<uint32_t>(c) <= std::prev(it)->last;
}

std::u32string from_utf8(const char* utf8) { return decode_utf8(utf8, "text table"); }

const char* named_reference(const std::string& name) {
  const auto it = std::lower_bound(std::begin(kNamedReferences), std::end(kNamedReferences), name,
                                   [](const NamedReference& r, const std::string& n) { return std::strcmp(r.name, n.c_str()) < 0; });
  return it != std::end(kNamedReferences) && name == it->name ? it->utf8 : nullptr;
}

bool ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool ascii_hex(char32_t c) { return ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// One numeric reference's replacement, as html._replace_charref.
std::u32string numeric(const std::u32string& digits, int base) {
  uint64_t value = 0;
  for (const char32_t c : digits) {
    const uint64_t d = ascii_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
    value = std::min<uint64_t>(value * static_cast<uint64_t>(base) + d, 0x7fffffffull);  // beyond 0x10FFFF stays beyond
  }
  for (const auto& r : kInvalidCharrefs) {
    if (r.code == value) return from_utf8(r.utf8);
  }
  if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) return U"\uFFFD";
  if (std::binary_search(std::begin(kDroppedCodepoints), std::end(kDroppedCodepoints), static_cast<uint32_t>(value))) {
    return U"";
  }
  return std::u32string(1, static_cast<char32_t>(value));
}

}  // namespace

std::u32string decode_utf8(const std::string& text, const char* what) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    const int extra = b < 0x80 ? 0 : (b >> 5) == 0x6 ? 1 : (b >> 4) == 0xE ? 2 : (b >> 3) == 0x1E ? 3 : -1;
    SPARSESCOPE_CHECK(extra >= 0, what, " is not valid UTF-8 (byte ", i, ")");
    char32_t c = extra == 0 ? b : b & (0x3F >> extra);
    for (int k = 1; k <= extra; ++k) {
      SPARSESCOPE_CHECK(i + k < text.size() && (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80, what,
                        " is not valid UTF-8 (byte ", i + k, ")");
      c = (c << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    }
    const char32_t smallest[4] = {0, 0x80, 0x800, 0x10000};
    SPARSESCOPE_CHECK(c >= smallest[extra] && c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF), what,
                      " is not valid UTF-8 (byte ", i, ")");
    out.push_back(c);
    i += static_cast<std::size_t>(extra) + 1;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char32_t c : text) append_utf8(out, c);
  return out;
}

bool is_letter(char32_t c) { return in(kLetters, c); }
bool is_number(char32_t c) { return in(kNumbers, c); }
bool is_regex_space(char32_t c) { return in(kSpaces, c); }
bool is_python_space(char32_t c) { return in(kPythonSpaces, c); }

std::u32string python_lower(char32_t c) {
  const auto it = std::lower_bound(std::begin(kLower), std::end(kLower), static_cast<uint32_t>(c),
                                   [](const LowerEntry& e, uint32_t v) { return e.code < v; });
  if (it != std::end(kLower) && it->code == c) return from_utf8(it->utf8);
  return std::u32string(1, c);
}

std::u32string html_unescape(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    std::size_t j = i + 1;
    // &#[0-9]+;?  |  &#[xX][0-9a-fA-F]+;?
    if (j < s.size() && s[j] == U'#') {
      const bool hex = j + 1 < s.size() && (s[j + 1] == U'x' || s[j + 1] == U'X');
      std::size_t k = j + (hex ? 2 : 1), start = k;
      while (k < s.size() && (hex ? ascii_hex(s[k]) : ascii_digit(s[k]))) ++k;
      if (k > start) {
        out += numeric(s.substr(start, k - start), hex ? 16 : 10);
        i = k < s.size() && s[k] == U';' ? k + 1 : k;
        continue;
      }
      out.push_back(s[i++]);  // "&#" without digits: the '&' stays, scanning resumes after it
      continue;
    }
    // &[^\t\n\f <&#;]{1,32};?
    std::size_t k = j;
    while (k < s.size() && k - j < 32 && s[k] != U'\t' && s[k] != U'\n' && s[k] != U'\f' && s[k] != U' ' &&
           s[k] != U'<' && s[k] != U'&' && s[k] != U'#' && s[k] != U';') {
      ++k;
    }
    if (k == j) {
      out.push_back(s[i++]);
      continue;
    }
    const std::size_t end = k < s.size() && s[k] == U';' ? k + 1 : k;
    const std::u32string name = s.substr(j, end - j);
    const std::string key = encode_utf8(name);
    if (const char* value = named_reference(key)) {
      out += from_utf8(value);
    } else {
      bool found = false;
      for (std::size_t x = name.size() - 1; x > 1; --x) {  // the longest listed prefix, at least 2 long
        if (const char* value = named_reference(encode_utf8(name.substr(0, x)))) {
          out += from_utf8(value);
          out += name.substr(x);
          found = true;
          break;
        }
      }
      if (!found) {
        out.push_back(U'&');
        out += name;
      }
    }
    i = end;
  }
  return out;
}

}  // namespace sparsescope::vlm::detail
