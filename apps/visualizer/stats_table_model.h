#pragma once
// Per-head statistics of a trace as a table: one row per attention site, one column per head, the
// chosen statistic (recall, density or entropy) as value and as a heatmap background. A Qt item
// model, so it is tested with QAbstractItemModelTester and shown by a plain QTableView.
#include <QAbstractTableModel>
#include <QColor>
#include <memory>
#include <vector>

#include "sparsescope/vision/trace.h"

namespace sparsescope::viewer {

class StatsTableModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  explicit StatsTableModel(QObject* parent = nullptr);

  /// Shows `trace`'s stats (nullptr: an empty table).
  void set_trace(std::shared_ptr<const vision::Trace> trace);
  /// Which column of SiteTrace::stats the cells show.
  void set_statistic(vision::StatColumn column);
  vision::StatColumn statistic() const { return statistic_; }

  /// The value of `statistic()` at (layer, head); NaN where not recorded (recall without a dense
  /// comparison, or a site with fewer heads).
  double value(int layer, int head) const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  /// DisplayRole: the value with 3 decimals ("n/a" for NaN); ToolTipRole: all three statistics;
  /// BackgroundRole / ForegroundRole: the heatmap colour and a readable text colour on it;
  /// Qt::UserRole: the value as a double.
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

  static const char* statistic_name(vision::StatColumn column);

 private:
  void recolour();

  std::shared_ptr<const vision::Trace> trace_;
  std::vector<at::Tensor> stats_;  // per site, float32 [H, kStatColumns] on the CPU
  vision::StatColumn statistic_ = vision::kRecall;
  int heads_ = 0;
  std::vector<QColor> colours_;  // row-major rows x heads_, invalid for NaN
};

}  // namespace sparsescope::viewer
