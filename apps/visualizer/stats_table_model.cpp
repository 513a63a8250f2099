#include "stats_table_model.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "sparsescope/vision/colormap.h"

namespace sparsescope::viewer {

StatsTableModel::StatsTableModel(QObject* parent) : QAbstractTableModel(parent) {}

const char* StatsTableModel::statistic_name(vision::StatColumn column) {
  switch (column) {
    case vision::kRecall:
      return "recall";
    case vision::kDensity:
      return "density";
    case vision::kEntropy:
      return "entropy";
    case vision::kStatColumns:
      break;
  }
  return "?";
}

void StatsTableModel::set_trace(std::shared_ptr<const vision::Trace> trace) {
  beginResetModel();
  trace_ = std::move(trace);
  stats_.clear();
  heads_ = 0;
  if (trace_) {
    for (const auto& site : trace_->sites) {
      stats_.push_back(site.stats.defined() ? site.stats.to(at::kFloat).cpu().contiguous() : at::Tensor());
      heads_ = std::max(heads_, static_cast<int>(site.heads()));
    }
  }
  recolour();
  endResetModel();
}

void StatsTableModel::set_statistic(vision::StatColumn column) {
  if (column == statistic_) return;
  statistic_ = column;
  recolour();
  if (rowCount() > 0 && columnCount() > 0) Q_EMIT dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
}

double StatsTableModel::value(int layer, int head) const {
  const at::Tensor& s = stats_.at(layer);
  if (!s.defined() || head >= s.size(0) || statistic_ >= s.size(1)) return std::numeric_limits<double>::quiet_NaN();
  return s.data_ptr<float>()[head * s.size(1) + statistic_];
}

void StatsTableModel::recolour() {
  const int rows = rowCount();
  at::Tensor values = at::full({rows, heads_}, std::numeric_limits<float>::quiet_NaN());
  for (int r = 0; r < rows; ++r)
    for (int h = 0; h < heads_; ++h) values[r][h] = value(r, h);
  // Recall and density are fractions; entropy (nats) spans the table's own range.
  double lo = 0, hi = 1;
  const at::Tensor finite = values.masked_select(values.isfinite());
  if (statistic_ == vision::kEntropy && finite.numel() > 0) {
    lo = finite.min().item<double>();
    hi = std::max(finite.max().item<double>(), lo + 1e-6);
  }
  colours_.assign(static_cast<size_t>(rows) * heads_, QColor());
  if (rows == 0 || heads_ == 0) return;
  const at::Tensor rgb = vision::apply_colormap(values.nan_to_num(0.0), vision::Colormap::Viridis, lo, hi).contiguous();
  const auto* p = rgb.data_ptr<uint8_t>();
  for (int i = 0; i < rows * heads_; ++i)
    if (std::isfinite(values.data_ptr<float>()[i])) colours_[i] = QColor(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
}

int StatsTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(stats_.size());
}

int StatsTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : heads_; }

QVariant StatsTableModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid)) return {};
  const double v = value(index.row(), index.column());
  const QColor& colour = colours_[static_cast<size_t>(index.row()) * heads_ + index.column()];
  switch (role) {
    case Qt::DisplayRole:
      return std::isnan(v) ? QString("n/a") : QString::number(v, 'f', 3);
    case Qt::UserRole:
      return v;
    case Qt::BackgroundRole:
      return colour.isValid() ? QVariant(colour) : QVariant();
    case Qt::ForegroundRole:
      if (!colour.isValid()) return {};
      return QColor(colour.lightness() > 128 ? Qt::black : Qt::white);
    case Qt::ToolTipRole: {
      const at::Tensor& s = stats_[index.row()];
      if (!s.defined() || index.column() >= s.size(0)) return QString("not recorded");
      const float* row = s.data_ptr<float>() + index.column() * s.size(1);
      return QString("%1, head %2\nrecall %3\ndensity %4\nentropy %5 nats")
          .arg(QString::fromStdString(trace_->sites[index.row()].name))
          .arg(index.column())
          .arg(row[vision::kRecall], 0, 'g', 4)
          .arg(row[vision::kDensity], 0, 'g', 4)
          .arg(row[vision::kEntropy], 0, 'g', 4);
    }
    default:
      return {};
  }
}

QVariant StatsTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole) return {};
  if (orientation == Qt::Horizontal) return QString("h%1").arg(section);
  if (section < 0 || section >= rowCount()) return {};
  return QString::fromStdString(trace_->sites[section].name);
}

}  // namespace sparsescope::viewer
