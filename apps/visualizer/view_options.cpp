#include "view_options.h"

#include <algorithm>

namespace sparsescope::viewer {

void ViewOptions::set_colormap(vision::Colormap colormap) {
  if (colormap == colormap_) return;
  colormap_ = colormap;
  Q_EMIT changed();
}

void ViewOptions::set_opacity(double opacity) {
  opacity = std::clamp(opacity, 0.0, 1.0);
  if (opacity == opacity_) return;
  opacity_ = opacity;
  Q_EMIT changed();
}

}  // namespace sparsescope::viewer
