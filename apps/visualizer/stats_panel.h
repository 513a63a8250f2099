#pragma once
// The stats table: the StatsTableModel in a QTableView with a choice of statistic; the selected
// layer and head are the current cell, and clicking a cell selects them.
#include <QString>
#include <QWidget>

class QComboBox;
class QTableView;

namespace sparsescope::viewer {

class StatsTableModel;
class TraceModel;

class StatsPanel : public QWidget {
  Q_OBJECT

 public:
  StatsPanel(TraceModel* model, QWidget* parent = nullptr);

  QTableView* table_view() const { return view_; }

 private:
  void follow_selection();

  TraceModel* model_;
  StatsTableModel* table_;
  QComboBox* statistic_;
  QTableView* view_;
  QString method_;  // of the last trace shown
};

}  // namespace sparsescope::viewer
