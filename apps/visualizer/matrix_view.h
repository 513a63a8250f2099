#pragma once
// One matrix image (token x token or block x block, or a picture) with zoom (wheel, around the cursor) and pan
// (drag), nearest-neighbour so single cells stay sharp, and one highlighted row. Two views can
// follow each other through view_changed / set_view.
#include <QImage>
#include <QPointF>
#include <QWidget>

namespace sparsescope::viewer {

class MatrixView : public QWidget {
  Q_OBJECT

 public:
  explicit MatrixView(QWidget* parent = nullptr);

  /// Shows `image`; the zoom and pan are kept when the size is unchanged (another head).
  void set_image(const QImage& image);
  void set_highlighted_row(int row);  // -1: none
  int highlighted_row() const { return row_; }

  /// Zoom 1 fits the whole matrix; `origin` is the matrix point at the widget's top-left corner.
  void set_view(double zoom, QPointF origin);
  void fit();

  /// Widget point -> matrix cell (column, row), which may lie outside the matrix, and back.
  QPointF to_cell(QPointF widget_point) const;
  QPointF to_widget(QPointF cell) const;

  QSize sizeHint() const override { return {300, 300}; }

 Q_SIGNALS:
  void view_changed(double zoom, QPointF origin);
  void row_clicked(int row);
  void cell_clicked(int column, int row);  // a click (not a drag) inside the image

 protected:
  void paintEvent(QPaintEvent* event) override;
  void wheelEvent(QWheelEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void mouseReleaseEvent(QMouseEvent* event) override;
  void resizeEvent(QResizeEvent* event) override;

 private:
  double scale() const;  // widget pixels per matrix cell
  void centre_when_fitted();

  QImage image_;
  int row_ = -1;
  double zoom_ = 1;
  QPointF origin_;
  QPointF press_;       // where a drag started (widget coordinates)
  QPointF press_origin_;
  bool dragged_ = false;
};

}  // namespace sparsescope::viewer
