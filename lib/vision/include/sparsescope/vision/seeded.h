#pragma once
// Reproducible construction of modules that initialise from torch's global CPU generator (as
// torch's and open_clip's modules do), without disturbing other users of that generator.
#include <cstdint>
#include <functional>

namespace sparsescope::vision {

/// Runs `fn` with the global CPU generator seeded with `seed`, and restores its state afterwards.
void run_seeded(uint64_t seed, const std::function<void()>& fn);

}  // namespace sparsescope::vision
