#pragma once
// The mask view's two matrices for one head of one site, widget-free: which connections the
// pattern kept (token x token, or the kept fraction of each block when the trace is pooled) and the
// probabilities the recorder stored.
#include <QImage>
#include <cstdint>

#include "sparsescope/vision/colormap.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::viewer {

struct MaskImages {
  QImage mask;         // gray: white = every connection of the cell kept, black = none
  QImage probs;        // colour-mapped over [0, probs_hi]
  double probs_hi = 1;  // the 99th percentile of the head's probabilities: a few peaks would
                        // otherwise leave every other cell in the colormap's first colour
  int64_t pool = 1;    // tokens per cell side
};

/// Matrices [ceil(N/pool), ceil(M/pool)] of head `head` of `site`; a site whose mask has one plane
/// shares it between heads. Throws sparsescope::Error naming the site when `head` is out of range.
MaskImages render_mask(const vision::SiteTrace& site, int head, vision::Colormap colormap);

}  // namespace sparsescope::viewer
