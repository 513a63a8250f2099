#include "distance_plot.h"

#include <ATen/ATen.h>

#include <QPainter>
#include <QPainterPath>
#include <algorithm>
#include <cmath>
#include <limits>

#include "sparsescope/vision/attention_maps.h"

namespace sparsescope::viewer {

DistanceSeries distance_series(const vision::Trace& trace, const QString& name) {
  DistanceSeries s{name, {}};
  const auto& layout = trace.info.layout;
  for (const vision::SiteTrace* site : vision::attention_sites(trace)) {
    s.layers.push_back(vision::has_attention_distance(*site, layout)
                           ? vision::mean_attention_distance(*site, layout).mean().item<double>()
                           : std::numeric_limits<double>::quiet_NaN());
  }
  return s;
}

QImage render_distance_plot(const std::vector<DistanceSeries>& series, QSize size) {
  static const QColor kColours[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44),
                                    QColor(214, 39, 40), QColor(148, 103, 189)};
  QImage image(size, QImage::Format_RGB32);
  image.fill(Qt::white);
  QPainter painter(&image);
  painter.setRenderHint(QPainter::Antialiasing);
  size_t layers = 1;
  double top = 0;
  for (const auto& s : series) {
    layers = std::max(layers, s.layers.size());
    for (const double v : s.layers)
      if (std::isfinite(v)) top = std::max(top, v);
  }
  top = top > 0 ? top * 1.1 : 1.0;
  const QRectF area(64, 16, size.width() - 80, size.height() - 56);
  auto x_of = [&](size_t layer) {
    return area.left() + (layers == 1 ? 0.5 : static_cast<double>(layer) / static_cast<double>(layers - 1)) * area.width();
  };
  auto y_of = [&](double v) { return area.bottom() - v / top * area.height(); };
  painter.setPen(Qt::black);
  painter.drawLine(area.bottomLeft(), area.bottomRight());
  painter.drawLine(area.bottomLeft(), area.topLeft());
  for (int t = 0; t <= 4; ++t) {  // y ticks
    const double v = top * t / 4;
    painter.drawText(QRectF(0, y_of(v) - 8, area.left() - 6, 16), Qt::AlignRight | Qt::AlignVCenter,
                     QString::number(v, 'f', 1));
  }
  const size_t step = std::max<size_t>(1, layers / 12);
  for (size_t l = 0; l < layers; l += step) {  // x ticks
    painter.drawText(QRectF(x_of(l) - 20, area.bottom() + 4, 40, 16), Qt::AlignCenter, QString::number(l));
  }
  painter.drawText(QRectF(area.left(), area.bottom() + 20, area.width(), 16), Qt::AlignCenter, "layer");
  painter.save();
  painter.translate(12, area.center().y());
  painter.rotate(-90);
  painter.drawText(QRectF(-area.height() / 2, -8, area.height(), 16), Qt::AlignCenter, "mean attention distance (patches)");
  painter.restore();
  for (size_t i = 0; i < series.size(); ++i) {
    const QColor colour = kColours[i % (sizeof(kColours) / sizeof(kColours[0]))];
    painter.setPen(QPen(colour, 2));
    QPainterPath path;
    bool open = false;
    for (size_t l = 0; l < series[i].layers.size(); ++l) {
      const double v = series[i].layers[l];
      if (!std::isfinite(v)) {
        open = false;
        continue;
      }
      const QPointF p(x_of(l), y_of(v));
      open ? path.lineTo(p) : path.moveTo(p);
      open = true;
      painter.setBrush(colour);
      painter.drawEllipse(p, 3, 3);
    }
    painter.setBrush(Qt::NoBrush);
    painter.drawPath(path);
    const double legend = std::min(area.width() / 2, 360.0), y = area.top() + area.height() - 18.0 * (series.size() - i);
    painter.drawLine(QPointF(area.right() - legend, y), QPointF(area.right() - legend + 20, y));
    painter.setPen(Qt::black);
    const QRectF text(area.right() - legend + 25, y - 8, legend - 25, 16);
    painter.drawText(text, Qt::AlignLeft | Qt::AlignVCenter,
                     painter.fontMetrics().elidedText(series[i].name, Qt::ElideMiddle, static_cast<int>(text.width())));
  }
  return image;
}

}  // namespace sparsescope::viewer
