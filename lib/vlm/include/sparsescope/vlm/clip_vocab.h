#pragma once
// Where CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz) is found.
#include <string>

namespace sparsescope::vlm {

/// `given` when not empty, else $SPARSESCOPE_CLIP_VOCAB, else the copy in ../shared/data/clip beside
/// the source tree. Throws sparsescope::Error saying how to give one when none exists.
std::string clip_vocab_path(const std::string& given = "");

}  // namespace sparsescope::vlm
