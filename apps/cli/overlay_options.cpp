#include "overlay_options.h"

#include <CLI/CLI.hpp>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/colormap.h"

namespace sparsescope::cli {

vision::OverlayStyle OverlayOptions::style() const {
  vision::OverlayStyle style;
  style.colormap = vision::parse_colormap(colormap);
  style.alpha = alpha;
  return style;
}

void add_overlay_options(CLI::App& cmd, OverlayOptions& options) {
  // The library's parser is the one list of names, so the flag can never disagree with it.
  cmd.add_option("--colormap", options.colormap, "Overlay colormap: viridis, magma, inferno, turbo or gray")
      ->check([](const std::string& name) {
        try {
          vision::parse_colormap(name);
          return std::string();
        } catch (const sparsescope::Error& e) {
          return std::string(e.what());
        }
      });
  cmd.add_option("--alpha", options.alpha, "Opacity of the attention over the image")->check(CLI::Range(0.0, 1.0));
}

}  // namespace sparsescope::cli
