#pragma once
// Attention drawn over the picture the network saw, as `sparsescope infer --overlays` and
// `sparsescope trace export` write it.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "sparsescope/vision/colormap.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::vision {

struct OverlayStyle {
  Colormap colormap = Colormap::Viridis;
  double alpha = 0.6;   // weight of the colormapped attention over the image
  int64_t columns = 0;  // tiles per row; 0: ceil(sqrt(tiles))
  int64_t gap = 4;      // white pixels between tiles
};

/// `map` [gh, gw] as one tile: upsampled bilinearly to the trace's image, scaled from its minimum to its
/// maximum, colormapped and blended over the image with `style.alpha`; uint8 [h, w, 3]. A trace
/// without an image gets the colours alone at 16 pixels per patch.
at::Tensor map_over_image(const at::Tensor& map, const Trace& trace, const OverlayStyle& style);

/// One tile per head of query_maps(site, layout, query): upsampled to the trace's image, scaled from
/// that head's minimum to its maximum (as DINO's figures, drawn with matplotlib, show heads),
/// colormapped and blended over the image. A trace
/// without an image gets the maps alone at 16 pixels per patch. Needs a single-frame grid (T = 1).
Image head_grid_overlay(const Trace& trace, const SiteTrace& site, int64_t query, const OverlayStyle& style = {});

/// rollout(trace, query) drawn as one such tile.
Image rollout_overlay(const Trace& trace, int64_t query, const OverlayStyle& style = {});

}  // namespace sparsescope::vision
