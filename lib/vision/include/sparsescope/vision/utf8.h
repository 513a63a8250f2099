#pragma once
// File names and label files are bytes; JSON (traces, model cards, predictions) holds UTF-8 only.
#include <string>

namespace sparsescope::vision {

/// Whether `text` is valid UTF-8 (RFC 3629: shortest forms, no surrogates, at most U+10FFFF).
bool is_utf8(const std::string& text);

/// `text` with every byte that is not part of valid UTF-8 written as \xHH. The same bytes always
/// give the same text, so a name made printable stays a key across runs.
std::string printable(const std::string& text);

}  // namespace sparsescope::vision
