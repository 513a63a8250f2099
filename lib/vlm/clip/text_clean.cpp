// open_clip's _clean_lower: whitespace_clean(basic_clean(text)).lower().
#include "sparsescope/vlm/clip_tokenizer.h"
#include "unicode.h"

namespace sparsescope::vlm {

std::string clip_clean_text(const std::string& text) {
  std::u32string t = detail::decode_utf8(text, "CLIP text");
  for (char32_t& c : t) {  // ftfy's uncurl_quotes: [\u02bc\u2018-\u201b] -> ', [\u201c-\u201f] -> "
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
    if (c >= 0x201C && c <= 0x201F) c = U'"';
  }
  t = detail::html_unescape(detail::html_unescape(t));
  std::u32string out;
  for (std::size_t i = 0; i < t.size();) {  // " ".join(text.split())
    while (i < t.size() && detail::is_python_space(t[i])) ++i;
    if (i == t.size()) break;
    if (!out.empty()) out.push_back(U' ');
    while (i < t.size() && !detail::is_python_space(t[i])) out += detail::python_lower(t[i++]);
  }
  return detail::encode_utf8(out);
}

}  // namespace sparsescope::vlm
