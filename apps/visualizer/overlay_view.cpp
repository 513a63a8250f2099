#include "overlay_view.h"

#include <QMouseEvent>
#include <QPainter>

namespace sparsescope::viewer {

OverlayView::OverlayView(QWidget* parent) : QWidget(parent) {
  setMinimumSize(224, 224);
  setAttribute(Qt::WA_OpaquePaintEvent);  // paintEvent fills every pixel: nothing beneath to repaint
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

void OverlayView::set_picture(const QImage& image, int64_t rows, int64_t cols, std::optional<TokenPosition> marked) {
  image_ = image;
  rows_ = rows;
  cols_ = cols;
  marked_ = marked;
  placeholder_.clear();
  update();
}

void OverlayView::set_placeholder(const QString& text) {
  image_ = {};
  placeholder_ = text;
  update();
}

QRect OverlayView::picture_rect() const {
  if (image_.isNull()) return {};
  const QSize fitted = image_.size().scaled(size(), Qt::KeepAspectRatio);
  return {QPoint((width() - fitted.width()) / 2, (height() - fitted.height()) / 2), fitted};
}

void OverlayView::paintEvent(QPaintEvent*) {
  QPainter painter(this);
  painter.fillRect(rect(), palette().window());
  if (image_.isNull()) {
    painter.drawText(rect(), Qt::AlignCenter | Qt::TextWordWrap, placeholder_);
    return;
  }
  const QRect target = picture_rect();
  painter.setRenderHint(QPainter::SmoothPixmapTransform);
  painter.drawImage(target, image_);
  if (!marked_ || marked_->prefix || rows_ <= 0 || cols_ <= 0) return;
  const double cw = static_cast<double>(target.width()) / cols_;
  const double ch = static_cast<double>(target.height()) / rows_;
  const QRectF cell(target.x() + marked_->col * cw, target.y() + marked_->row * ch, cw, ch);
  painter.setPen(QPen(Qt::white, 2));
  painter.drawRect(cell);
  painter.setPen(QPen(Qt::black, 1));
  painter.drawRect(cell.adjusted(-2, -2, 2, 2));
}

void OverlayView::mousePressEvent(QMouseEvent* event) {
  const QRect target = picture_rect();
  const QPoint p = event->position().toPoint();
  if (event->button() != Qt::LeftButton || !target.contains(p) || rows_ <= 0 || cols_ <= 0) return;
  const int64_t col = std::min<int64_t>(cols_ - 1, (p.x() - target.x()) * cols_ / target.width());
  const int64_t row = std::min<int64_t>(rows_ - 1, (p.y() - target.y()) * rows_ / target.height());
  Q_EMIT patch_clicked(row, col);
}

}  // namespace sparsescope::viewer
