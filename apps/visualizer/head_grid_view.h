#pragma once
// Shows render_head_grid() scaled to fit, frames the selected tile, and selects the clicked one.
#include <QImage>
#include <QWidget>
#include <optional>

#include "head_grid.h"

namespace sparsescope::viewer {

class TraceModel;
class ViewOptions;

class HeadGridView : public QWidget {
  Q_OBJECT

 public:
  HeadGridView(TraceModel* model, ViewOptions* options, QWidget* parent = nullptr);

  const QImage& picture() const { return image_; }
  /// The grid's layout (none while no trace is shown) and where the grid image is drawn.
  const std::optional<HeadGridLayout>& grid_layout() const { return layout_; }
  QRect picture_rect() const;

  QSize sizeHint() const override { return {420, 420}; }

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;

 private:
  void rerender();

  TraceModel* model_;
  ViewOptions* options_;
  std::optional<HeadGridLayout> layout_;
  QImage image_;
};

}  // namespace sparsescope::viewer
