#pragma once
// Widget-free pieces of the cross-attention window (traces with a cross layout, trace_metadata.h:
// text tokens and image regions attending across): which weights a click selects, the picture with
// its region boxes drawn by weight, and which box a point falls in.
#include <ATen/core/Tensor.h>

#include <QColor>
#include <QImage>
#include <QPointF>
#include <QString>
#include <vector>

#include "sparsescope/vision/colormap.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::viewer {

struct CrossSelection {
  bool word = true;  // a word (its attention over the regions) or a region (over the words)
  int index = 0;     // which word or region
  int head = -1;     // -1: the mean over heads
  int layer = 0;     // the layer-th site from each side
};

/// Sites from the words (`from` text) and from the regions, in trace order. Throws sparsescope::Error
/// unless the trace has a cross layout with a site from the words.
struct CrossSites {
  std::vector<const vision::SiteTrace*> from_words, from_regions;
};
CrossSites cross_sites(const vision::Trace& trace);

/// What the selected word gives each region ([regions]) or the selected region each word
/// ([words]), float32 summing to 1; undefined when the trace has no site from that side at `layer`.
/// Throws sparsescope::Error for an index, head or layer out of range.
at::Tensor cross_weights(const vision::Trace& trace, const CrossSelection& selection);

/// The colour of each weight ([K]) in `colormap`, scaled to the largest: what the boxes and the
/// words are painted with.
std::vector<QColor> weight_colours(const at::Tensor& weights, vision::Colormap colormap);

/// The trace's picture (a grey one of the boxes' extent when it has none) with every region's box:
/// with `region_weights` ([regions]) each outlined in the colormap's colour of its weight over the
/// largest and filled in proportion, else in grey; `selected` (a region, or -1) outlined in white.
QImage render_regions(const vision::Trace& trace, const at::Tensor& region_weights, int selected,
                      vision::Colormap colormap);

/// The region whose box holds `point` (picture pixels), the smallest when several do; -1 if none.
int region_at(const vision::TokenLayout& layout, QPointF point);

/// "x1,y1,x2,y2" of region `index` in the picture's pixels.
QString region_label(const vision::TokenLayout& layout, int index);

}  // namespace sparsescope::viewer
