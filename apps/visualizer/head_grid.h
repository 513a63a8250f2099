#pragma once
// The layer x head grid of small maps for the selected query: one row per layer, one column per
// head plus a last column with the mean over the layer's heads, and a last row with the rollout
// through all layers. The layout (tile rectangles, hit testing) and the rendering are widget-free.
#include <QImage>
#include <QPoint>
#include <QRect>
#include <QSize>
#include <optional>

#include "sparsescope/vision/colormap.h"
#include "trace_model.h"

namespace sparsescope::viewer {

struct GridCell {
  MapKind kind = MapKind::Head;
  int layer = 0;  // unused for the rollout
  int head = 0;   // used for heads only

  bool operator==(const GridCell& o) const {
    return kind == o.kind && (kind == MapKind::Rollout || layer == o.layer) && (kind != MapKind::Head || head == o.head);
  }
};

/// Positions in the grid image: a header row of column names, a margin of row names, tiles.
class HeadGridLayout {
 public:
  HeadGridLayout(int layers, int heads, int tile);

  QSize size() const;
  QRect tile_rect(const GridCell& cell) const;
  /// The cell under `point` (grid image coordinates), if any: heads, means or the rollout tile.
  std::optional<GridCell> cell_at(QPoint point) const;
  /// The cell that shows `selection`.
  static GridCell cell_of(const Selection& selection);

  int layers() const { return layers_; }
  int heads() const { return heads_; }
  int tile() const { return tile_; }

  static constexpr int kLabelWidth = 40;
  static constexpr int kHeaderHeight = 18;
  static constexpr int kGap = 2;

 private:
  QRect rect_at(int row, int column) const;

  int layers_;
  int heads_;
  int tile_;
};

/// Every tile of `model`'s selected query, each map scaled from its own minimum to its maximum (so
/// that the shape of weak or diffuse heads shows too), with row and column names. Needs a
/// non-empty model.
QImage render_head_grid(const TraceModel& model, const HeadGridLayout& layout, vision::Colormap colormap);

}  // namespace sparsescope::viewer
