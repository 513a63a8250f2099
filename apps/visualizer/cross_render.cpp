#include "cross_render.h"

#include <ATen/ATen.h>

#include <QPainter>
#include <algorithm>
#include <cmath>

#include "image_convert.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::viewer {

CrossSites cross_sites(const vision::Trace& trace) {
  SPARSESCOPE_CHECK(trace.info.layout.kind == vision::kCrossLayout, "trace of '", trace.info.input,
                    "' has a ", trace.info.layout.kind, " layout, not a cross layout");
  CrossSites sites;
  for (const auto& s : trace.sites) {
    if (s.kind != vision::kAttentionMap) continue;
    (s.from == vision::kCrossText ? sites.from_words : sites.from_regions).push_back(&s);
  }
  SPARSESCOPE_CHECK(!sites.from_words.empty(), "trace of '", trace.info.input, "' has no attention from its words");
  return sites;
}

at::Tensor cross_weights(const vision::Trace& trace, const CrossSelection& s) {
  const CrossSites sites = cross_sites(trace);
  const auto& side = s.word ? sites.from_words : sites.from_regions;
  SPARSESCOPE_CHECK(s.layer >= 0 && s.layer < static_cast<int>(sites.from_words.size()), "layer ", s.layer,
                    " is out of range: the trace has ", sites.from_words.size());
  if (s.layer >= static_cast<int>(side.size())) return {};
  const vision::SiteTrace& site = *side[static_cast<size_t>(s.layer)];
  SPARSESCOPE_CHECK(s.index >= 0 && s.index < site.queries, s.word ? "word " : "region ", s.index,
                    " is out of range: there are ", site.queries);
  SPARSESCOPE_CHECK(s.head >= -1 && s.head < site.heads(), "head ", s.head, " is out of range: the site has ",
                    site.heads());
  // Cross sites are small: the recorder keeps them at full resolution (pool 1).
  SPARSESCOPE_CHECK(site.pool == 1, "site '", site.name, "' is pooled; a cross site needs its full map");
  const at::Tensor rows = site.probs.select(1, s.index).to(at::kFloat);  // [H, keys]
  return s.head < 0 ? rows.mean(0) : rows[s.head].clone();
}

std::vector<QColor> weight_colours(const at::Tensor& weights, vision::Colormap colormap) {
  const double top = std::max(weights.max().item<double>(), 1e-12);
  const at::Tensor rgb = vision::apply_colormap(weights.view({1, -1}) / top, colormap, 0, 1)[0].contiguous();  // [K, 3]
  std::vector<QColor> colours;
  const auto* p = rgb.data_ptr<uint8_t>();
  for (int64_t i = 0; i < rgb.size(0); ++i) colours.emplace_back(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
  return colours;
}

QImage render_regions(const vision::Trace& trace, const at::Tensor& region_weights, int selected,
                      vision::Colormap colormap) {
  const auto& regions = trace.info.layout.regions;
  QImage picture;
  if (trace.image.defined()) {
    picture = to_qimage(trace.image);
  } else {
    float w = 1, h = 1;
    for (const auto& b : regions) w = std::max(w, b[2]), h = std::max(h, b[3]);
    picture = QImage(static_cast<int>(std::ceil(w)), static_cast<int>(std::ceil(h)), QImage::Format_RGB32);
    picture.fill(QColor(96, 96, 96));
  }
  QPainter painter(&picture);
  painter.setRenderHint(QPainter::Antialiasing);
  const double side = std::max(picture.width(), picture.height());
  const double line = std::max(1.0, side / 160);
  std::vector<QColor> colours;
  double top = 0;
  if (region_weights.defined()) {
    top = std::max(region_weights.max().item<double>(), 1e-12);
    colours = weight_colours(region_weights, colormap);
  }
  // Weakest first, so that the strongest boxes are drawn on top.
  std::vector<int> order(regions.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  if (region_weights.defined()) {
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return region_weights[a].item<double>() < region_weights[b].item<double>(); });
  }
  for (const int i : order) {
    const auto& b = regions[static_cast<size_t>(i)];
    const QRectF box(QPointF(b[0], b[1]), QPointF(b[2], b[3]));
    if (!colours.empty()) {
      const double w = region_weights[i].item<double>() / top;
      const QColor c = colours[static_cast<size_t>(i)];
      QColor fill = c;
      fill.setAlphaF(static_cast<float>(0.45 * w));
      painter.fillRect(box, fill);
      painter.setPen(QPen(c, line * (1 + 2 * w)));
    } else {
      painter.setPen(QPen(QColor(200, 200, 200), line));
    }
    painter.drawRect(box);
  }
  if (selected >= 0 && selected < static_cast<int>(regions.size())) {
    const auto& b = regions[static_cast<size_t>(selected)];
    painter.setPen(QPen(Qt::white, line * 3, Qt::DashLine));
    painter.drawRect(QRectF(QPointF(b[0], b[1]), QPointF(b[2], b[3])));
  }
  return picture;
}

int region_at(const vision::TokenLayout& layout, QPointF point) {
  int best = -1;
  double area = 0;
  for (size_t i = 0; i < layout.regions.size(); ++i) {
    const auto& b = layout.regions[i];
    if (point.x() < b[0] || point.x() > b[2] || point.y() < b[1] || point.y() > b[3]) continue;
    const double a = static_cast<double>(b[2] - b[0]) * (b[3] - b[1]);
    if (best < 0 || a < area) best = static_cast<int>(i), area = a;
  }
  return best;
}

QString region_label(const vision::TokenLayout& layout, int index) {
  const auto& b = layout.regions.at(static_cast<size_t>(index));
  return QString("%1,%2,%3,%4").arg(b[0]).arg(b[1]).arg(b[2]).arg(b[3]);
}

}  // namespace sparsescope::viewer
