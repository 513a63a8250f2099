#include "matrix_view.h"

#include <QMouseEvent>
#include <QPainter>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>

namespace sparsescope::viewer {

namespace {

constexpr double kMaxZoom = 64;
constexpr double kDragThreshold = 3;  // pixels before a press becomes a pan instead of a click

}  // namespace

MatrixView::MatrixView(QWidget* parent) : QWidget(parent) {
  setMinimumSize(120, 120);
  setAttribute(Qt::WA_OpaquePaintEvent);  // paintEvent fills every pixel: nothing beneath to repaint
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

void MatrixView::set_image(const QImage& image) {
  const bool same_size = image.size() == image_.size();
  image_ = image;
  if (!same_size) fit();
  update();
}

void MatrixView::set_highlighted_row(int row) {
  row_ = row;
  update();
}

double MatrixView::scale() const {
  if (image_.isNull()) return 1;
  const double fit = std::min(static_cast<double>(width()) / image_.width(),
                              static_cast<double>(height()) / image_.height());
  return fit * zoom_;
}

void MatrixView::centre_when_fitted() {
  if (zoom_ != 1 || image_.isNull()) return;
  // Centre the fitted matrix: the origin moves up/left by half the spare room.
  const double s = scale();
  origin_ = QPointF(-(width() / s - image_.width()) / 2, -(height() / s - image_.height()) / 2);
}

void MatrixView::fit() {
  zoom_ = 1;
  centre_when_fitted();
  update();
  Q_EMIT view_changed(zoom_, origin_);
}

void MatrixView::set_view(double zoom, QPointF origin) {
  if (zoom == zoom_ && origin == origin_) return;
  zoom_ = zoom;
  origin_ = origin;
  update();
}

QPointF MatrixView::to_cell(QPointF p) const { return origin_ + p / scale(); }

QPointF MatrixView::to_widget(QPointF cell) const { return (cell - origin_) * scale(); }

void MatrixView::paintEvent(QPaintEvent*) {
  QPainter painter(this);
  painter.fillRect(rect(), palette().mid());  // grey, so that an all-white mask stands out
  if (image_.isNull()) {
    painter.drawText(rect(), Qt::AlignCenter, "No mask");
    return;
  }
  const double s = scale();
  painter.save();
  painter.scale(s, s);
  painter.translate(-origin_);
  painter.setRenderHint(QPainter::SmoothPixmapTransform, false);
  painter.drawImage(QPointF(0, 0), image_);
  painter.restore();
  if (row_ < 0 || row_ >= image_.height()) return;
  const QRectF band((0 - origin_.x()) * s, (row_ - origin_.y()) * s, image_.width() * s, std::max(s, 1.0));
  painter.fillRect(band, QColor(255, 60, 60, 90));
  painter.setPen(QPen(QColor(255, 60, 60), 1));
  painter.drawRect(band.adjusted(0, -1, 0, 1));
}

void MatrixView::wheelEvent(QWheelEvent* event) {
  if (image_.isNull()) return;
  const QPointF anchor = event->position();
  const QPointF cell = to_cell(anchor);
  const double factor = std::pow(1.0015, event->angleDelta().y());
  zoom_ = std::clamp(zoom_ * factor, 1.0, kMaxZoom);
  if (zoom_ == 1) {
    centre_when_fitted();
  } else {
    origin_ = cell - anchor / scale();  // keep the cell under the cursor
  }
  update();
  Q_EMIT view_changed(zoom_, origin_);
}

void MatrixView::mousePressEvent(QMouseEvent* event) {
  if (event->button() != Qt::LeftButton) return;
  press_ = event->position();
  press_origin_ = origin_;
  dragged_ = false;
}

void MatrixView::mouseMoveEvent(QMouseEvent* event) {
  if (!(event->buttons() & Qt::LeftButton) || image_.isNull()) return;
  const QPointF delta = event->position() - press_;
  if (!dragged_ && std::hypot(delta.x(), delta.y()) < kDragThreshold) return;
  dragged_ = true;
  origin_ = press_origin_ - delta / scale();
  update();
  Q_EMIT view_changed(zoom_, origin_);
}

void MatrixView::mouseReleaseEvent(QMouseEvent* event) {
  if (event->button() != Qt::LeftButton || dragged_ || image_.isNull()) return;
  const QPointF cell = to_cell(event->position());
  const int row = static_cast<int>(std::floor(cell.y())), column = static_cast<int>(std::floor(cell.x()));
  if (row >= 0 && row < image_.height()) Q_EMIT row_clicked(row);
  if (row >= 0 && row < image_.height() && column >= 0 && column < image_.width()) Q_EMIT cell_clicked(column, row);
}

void MatrixView::resizeEvent(QResizeEvent* event) {
  QWidget::resizeEvent(event);
  centre_when_fitted();
}

}  // namespace sparsescope::viewer
