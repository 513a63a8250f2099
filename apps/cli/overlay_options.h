#pragma once
// The flags that style attention overlays (--colormap, --alpha), shared by `infer --overlays` and
// `trace export`.
#include <string>

#include "sparsescope/vision/overlay.h"

namespace CLI {
class App;
}

namespace sparsescope::cli {

struct OverlayOptions {
  std::string colormap = "viridis";
  double alpha = 0.6;

  vision::OverlayStyle style() const;
};

void add_overlay_options(CLI::App& cmd, OverlayOptions& options);

}  // namespace sparsescope::cli
