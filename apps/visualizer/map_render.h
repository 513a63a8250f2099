#pragma once
// Attention maps to pixels, widget-free: one map over the image (the overlay) and the colour
// bar of a legend. Values map linearly from the map's minimum to its maximum, so that the
// diffuse maps of late layers (every patch near 1/N) still show their shape; the legend says what
// the end colours mean.
#include <ATen/core/Tensor.h>

#include <QImage>

#include "sparsescope/vision/colormap.h"

namespace sparsescope::viewer {

struct RenderedMap {
  QImage image;
  double lo = 0;  // the value drawn in the colormap's first colour
  double hi = 1;  // ... and in its last
};

/// `map` [h, w] upsampled bilinearly to `image` (uint8 [H, W, 3]), colour-mapped and blended onto
/// it: (1 - opacity) * image + opacity * colours.
RenderedMap render_overlay(const at::Tensor& image, const at::Tensor& map, vision::Colormap colormap,
                           double opacity);

/// A vertical colour bar, the colormap's last colour at the top.
QImage render_colorbar(vision::Colormap colormap, int width, int height);

}  // namespace sparsescope::viewer
