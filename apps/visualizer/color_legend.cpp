#include "color_legend.h"

#include <QPainter>

#include "map_render.h"

namespace sparsescope::viewer {

namespace {

constexpr int kBarWidth = 16;
constexpr int kBarHeight = 256;

}  // namespace

ColorLegend::ColorLegend(QWidget* parent) : QWidget(parent) {
  setMinimumWidth(72);
  setSizePolicy(QSizePolicy::Fixed, QSizePolicy::Expanding);
  bar_ = render_colorbar(colormap_, 1, kBarHeight);
}

void ColorLegend::set_scale(vision::Colormap colormap, double lo, double hi) {
  if (colormap != colormap_ || bar_.isNull()) bar_ = render_colorbar(colormap, 1, kBarHeight);
  colormap_ = colormap;
  lo_ = lo;
  hi_ = hi;
  update();
}

QStringList ColorLegend::labels() const {
  return {QString::number(hi_, 'g', 3), QString::number((lo_ + hi_) / 2, 'g', 3), QString::number(lo_, 'g', 3)};
}

void ColorLegend::paintEvent(QPaintEvent*) {
  QPainter painter(this);
  const int margin = fontMetrics().height();
  const QRect bar(4, margin, kBarWidth, std::max(1, height() - 2 * margin));
  painter.drawImage(bar, bar_);
  painter.setPen(palette().color(QPalette::WindowText));
  painter.drawRect(bar.adjusted(0, 0, -1, -1));
  const QStringList text = labels();
  const int x = bar.right() + 6;
  const int h = fontMetrics().height();
  painter.drawText(QRect(x, bar.top() - h / 2, width() - x, h), Qt::AlignLeft | Qt::AlignVCenter, text[0]);
  painter.drawText(QRect(x, bar.center().y() - h / 2, width() - x, h), Qt::AlignLeft | Qt::AlignVCenter, text[1]);
  painter.drawText(QRect(x, bar.bottom() - h / 2, width() - x, h), Qt::AlignLeft | Qt::AlignVCenter, text[2]);
}

}  // namespace sparsescope::viewer
