#pragma once
#include <cstdint>

namespace sparsescope::vision::detail {

// 256 RGB entries each; entry i is the colour of values in [i / 256, (i + 1) / 256).
extern const std::uint8_t kViridis[256][3];
extern const std::uint8_t kMagma[256][3];
extern const std::uint8_t kInferno[256][3];
extern const std::uint8_t kTurbo[256][3];

}  // namespace sparsescope::vision::detail
