#pragma once
// UTF-8 to code points and back, and the character classes of open_clip's tokenizer
// (text_tables.inc, generated from Python's `regex` and str methods).
#include <cstdint>
#include <string>
#include <vector>

namespace sparsescope::vlm::detail {

/// Throws sparsescope::Error on invalid UTF-8 (`what` names the text).
std::u32string decode_utf8(const std::string& text, const char* what);
std::string encode_utf8(const std::u32string& text);
void append_utf8(std::string& out, char32_t c);

bool is_letter(char32_t c);        // regex \p{L}
bool is_number(char32_t c);        // regex \p{N}
bool is_regex_space(char32_t c);   // regex \s
bool is_python_space(char32_t c);  // str.isspace()
/// str.lower() of one code point (one code point, or two for U+0130).
std::u32string python_lower(char32_t c);

/// html.unescape: named references of HTML5 (with and without ';' as the standard lists them, the
/// longest listed prefix for the rest), decimal and hexadecimal references with Python's table of
/// invalid ones.
std::u32string html_unescape(const std::u32string& text);

}  // namespace sparsescope::vlm::detail
