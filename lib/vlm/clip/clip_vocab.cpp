#include "sparsescope/vlm/clip_vocab.h"

#include <cstdlib>
#include <filesystem>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vlm {

std::string clip_vocab_path(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("SPARSESCOPE_CLIP_VOCAB"); env && *env) return env;
  const std::string shared = SPARSESCOPE_SHARED_CLIP_VOCAB;
  SPARSESCOPE_CHECK(std::filesystem::exists(shared), "--vocab: no CLIP vocabulary given (bpe_simple_vocab_16e6.txt.gz, "
                    "from open_clip's package or OpenAI's CLIP repository; or set SPARSESCOPE_CLIP_VOCAB)");
  return shared;
}

}  // namespace sparsescope::vlm
