#include "head_grid_view.h"

#include <QMouseEvent>
#include <QPainter>
#include <algorithm>

#include "trace_model.h"
#include "view_options.h"

namespace sparsescope::viewer {

namespace {

constexpr int kTile = 40;  // pixels of the rendered tiles; the view scales the whole grid to fit

}  // namespace

HeadGridView::HeadGridView(TraceModel* model, ViewOptions* options, QWidget* parent)
    : QWidget(parent), model_(model), options_(options) {
  setMinimumSize(160, 160);
  setAttribute(Qt::WA_OpaquePaintEvent);  // paintEvent fills every pixel: nothing beneath to repaint
  connect(model_, &TraceModel::trace_changed, this, &HeadGridView::rerender);
  connect(model_, &TraceModel::query_changed, this, &HeadGridView::rerender);
  connect(model_, &TraceModel::selection_changed, this, qOverload<>(&QWidget::update));
  connect(options_, &ViewOptions::changed, this, &HeadGridView::rerender);
  rerender();
}

void HeadGridView::rerender() {
  if (model_->empty()) {
    layout_.reset();
    image_ = {};
    setToolTip({});
  } else {
    layout_.emplace(model_->layers(), model_->max_heads(), kTile);
    image_ = render_head_grid(*model_, *layout_, options_->colormap());
    setToolTip(model_->rollout_maps().defined() ? QString() : "No rollout: " + model_->rollout_error());
  }
  update();
}

QRect HeadGridView::picture_rect() const {
  if (image_.isNull()) return {};
  const QSize fitted = image_.size().scaled(size(), Qt::KeepAspectRatio);
  return {QPoint((width() - fitted.width()) / 2, (height() - fitted.height()) / 2), fitted};
}

void HeadGridView::paintEvent(QPaintEvent*) {
  QPainter painter(this);
  painter.fillRect(rect(), palette().window());
  if (image_.isNull()) {
    painter.drawText(rect(), Qt::AlignCenter, "No trace");
    return;
  }
  const QRect target = picture_rect();
  painter.setRenderHint(QPainter::SmoothPixmapTransform);
  painter.drawImage(target, image_);
  // The selected tile, in grid image coordinates mapped onto the scaled picture.
  const double scale = static_cast<double>(target.width()) / image_.width();
  const QRect tile = layout_->tile_rect(HeadGridLayout::cell_of(model_->selection()));
  const QRectF framed(target.x() + (tile.x() - 1) * scale, target.y() + (tile.y() - 1) * scale,
                      (tile.width() + 2) * scale, (tile.height() + 2) * scale);
  painter.setPen(QPen(QColor(255, 80, 80), 2));
  painter.drawRect(framed);
}

void HeadGridView::mousePressEvent(QMouseEvent* event) {
  const QRect target = picture_rect();
  if (event->button() != Qt::LeftButton || !layout_ || !target.contains(event->position().toPoint())) return;
  const double scale = static_cast<double>(image_.width()) / target.width();
  const QPointF p = (event->position() - QPointF(target.topLeft())) * scale;
  const auto cell = layout_->cell_at(p.toPoint());
  if (!cell) return;
  Selection s = model_->selection();
  s.kind = cell->kind;
  if (cell->kind != MapKind::Rollout) s.layer = cell->layer;
  if (cell->kind == MapKind::Head) {
    if (cell->head >= model_->heads(s.layer)) return;  // an empty tile of a layer with fewer heads
    s.head = cell->head;
  }
  s.head = std::min(s.head, model_->heads(s.layer) - 1);
  model_->select(s);
}

}  // namespace sparsescope::viewer
