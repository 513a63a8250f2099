#include "head_grid.h"

#include <ATen/ATen.h>

#include <QPainter>
#include <vector>

#include "image_convert.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::viewer {

namespace {

const QColor kBackground(30, 30, 30);
const QColor kText(210, 210, 210);

}  // namespace

HeadGridLayout::HeadGridLayout(int layers, int heads, int tile) : layers_(layers), heads_(heads), tile_(tile) {
  SPARSESCOPE_CHECK(layers > 0 && heads > 0 && tile > 0, "head grid needs layers, heads and tile size > 0, got ",
                    layers, ", ", heads, ", ", tile);
}

QRect HeadGridLayout::rect_at(int row, int column) const {
  return {kLabelWidth + column * (tile_ + kGap), kHeaderHeight + row * (tile_ + kGap), tile_, tile_};
}

QSize HeadGridLayout::size() const {
  // heads + the mean column; layers + the rollout row.
  return {kLabelWidth + (heads_ + 1) * (tile_ + kGap), kHeaderHeight + (layers_ + 1) * (tile_ + kGap)};
}

QRect HeadGridLayout::tile_rect(const GridCell& cell) const {
  switch (cell.kind) {
    case MapKind::Head:
      return rect_at(cell.layer, cell.head);
    case MapKind::MeanOfHeads:
      return rect_at(cell.layer, heads_);
    case MapKind::Rollout:
      break;
  }
  return rect_at(layers_, 0);
}

std::optional<GridCell> HeadGridLayout::cell_at(QPoint point) const {
  const int x = point.x() - kLabelWidth;
  const int y = point.y() - kHeaderHeight;
  if (x < 0 || y < 0) return std::nullopt;
  const int column = x / (tile_ + kGap);
  const int row = y / (tile_ + kGap);
  if (x % (tile_ + kGap) >= tile_ || y % (tile_ + kGap) >= tile_) return std::nullopt;  // in a gap
  if (row < layers_ && column < heads_) return GridCell{MapKind::Head, row, column};
  if (row < layers_ && column == heads_) return GridCell{MapKind::MeanOfHeads, row, 0};
  if (row == layers_ && column == 0) return GridCell{MapKind::Rollout, 0, 0};
  return std::nullopt;
}

GridCell HeadGridLayout::cell_of(const Selection& s) { return {s.kind, s.layer, s.head}; }

QImage render_head_grid(const TraceModel& model, const HeadGridLayout& layout, vision::Colormap colormap) {
  SPARSESCOPE_CHECK(!model.empty(), "no trace is open");
  const int64_t t = model.query_frame();
  // Every tile's map in one batch [K, gh, gw], then normalised, upsampled and coloured at once.
  std::vector<at::Tensor> maps;
  std::vector<GridCell> cells;
  for (int l = 0; l < model.layers(); ++l) {
    const at::Tensor heads = model.layer_maps(l).select(1, t);  // [H, gh, gw]
    maps.push_back(heads);
    for (int h = 0; h < heads.size(0); ++h) cells.push_back({MapKind::Head, l, h});
    maps.push_back(model.mean_maps(l)[t].unsqueeze(0));
    cells.push_back({MapKind::MeanOfHeads, l, 0});
  }
  if (model.rollout_maps().defined()) {
    maps.push_back(model.rollout_maps()[t].unsqueeze(0));
    cells.push_back({MapKind::Rollout, 0, 0});
  }
  at::Tensor batch = at::cat(maps, 0).to(at::kFloat);  // [K, gh, gw]
  const auto [lo, hi] = at::aminmax(batch.flatten(1), 1);  // [K] each
  batch = (batch - lo.view({-1, 1, 1})) / (hi - lo).clamp_min(1e-12).view({-1, 1, 1});
  // Coloured at the grid's resolution, one patch per pixel, and scaled up smoothly while drawn:
  // colouring the upsampled tiles would cost more than the rest of a query switch.
  const int gh = static_cast<int>(batch.size(1));
  const int gw = static_cast<int>(batch.size(2));
  const QImage strip = to_qimage(vision::apply_colormap(batch.reshape({-1, gw}), colormap, 0.0, 1.0));

  QImage image(layout.size(), QImage::Format_RGB32);
  image.fill(kBackground);
  QPainter painter(&image);
  painter.setRenderHint(QPainter::SmoothPixmapTransform);
  for (size_t k = 0; k < cells.size(); ++k)
    painter.drawImage(layout.tile_rect(cells[k]), strip, QRect(0, static_cast<int>(k) * gh, gw, gh));

  painter.setPen(kText);
  QFont font = painter.font();
  font.setPixelSize(11);
  painter.setFont(font);
  const int header = HeadGridLayout::kHeaderHeight;
  for (int h = 0; h < layout.heads(); ++h) {
    const QRect r = layout.tile_rect({MapKind::Head, 0, h});
    painter.drawText(QRect(r.x(), 0, r.width(), header), Qt::AlignCenter, QString("h%1").arg(h));
  }
  const QRect mean = layout.tile_rect({MapKind::MeanOfHeads, 0, 0});
  painter.drawText(QRect(mean.x(), 0, mean.width(), header), Qt::AlignCenter, "mean");
  for (int l = 0; l < layout.layers(); ++l) {
    const QRect r = layout.tile_rect({MapKind::Head, l, 0});
    painter.drawText(QRect(0, r.y(), HeadGridLayout::kLabelWidth - 4, r.height()), Qt::AlignRight | Qt::AlignVCenter,
                     QString("L%1").arg(l));
  }
  const QRect roll = layout.tile_rect({MapKind::Rollout, 0, 0});
  painter.drawText(QRect(0, roll.y(), HeadGridLayout::kLabelWidth - 4, roll.height()),
                   Qt::AlignRight | Qt::AlignVCenter, "roll");
  if (!model.rollout_maps().defined()) {
    painter.drawText(QRect(roll.x(), roll.y(), layout.size().width() - roll.x(), roll.height()),
                     Qt::AlignLeft | Qt::AlignVCenter | Qt::TextWordWrap,
                     "no rollout: " + model.rollout_error());
  }
  return image;
}

}  // namespace sparsescope::viewer
