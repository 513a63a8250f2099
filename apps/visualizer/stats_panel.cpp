#include "stats_panel.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QTableView>
#include <QVBoxLayout>

#include "sparsescope/vision/registry.h"
#include "stats_table_model.h"
#include "trace_model.h"

namespace sparsescope::viewer {

StatsPanel::StatsPanel(TraceModel* model, QWidget* parent)
    : QWidget(parent),
      model_(model),
      table_(new StatsTableModel(this)),
      statistic_(new QComboBox(this)),
      view_(new QTableView(this)) {
  for (auto c : {vision::kRecall, vision::kDensity, vision::kEntropy})
    statistic_->addItem(StatsTableModel::statistic_name(c), static_cast<int>(c));
  statistic_->setToolTip(
      "recall: dense attention mass the kept connections cover (mean over queries)\n"
      "density: fraction of connections kept\nentropy: of each query's attention, in nats (mean)");
  view_->setModel(table_);
  view_->setSelectionMode(QAbstractItemView::SingleSelection);
  view_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  view_->verticalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);

  auto* top = new QHBoxLayout;
  top->addWidget(new QLabel("Statistic", this));
  top->addWidget(statistic_);
  top->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(top);
  layout->addWidget(view_, 1);

  connect(statistic_, &QComboBox::currentIndexChanged, this, [this](int) {
    table_->set_statistic(static_cast<vision::StatColumn>(statistic_->currentData().toInt()));
  });
  connect(view_, &QTableView::clicked, this, [this](const QModelIndex& index) {
    if (model_->empty() || index.column() >= model_->heads(index.row())) return;
    Selection s = model_->selection();
    s.layer = index.row();
    s.head = index.column();
    s.kind = MapKind::Head;
    model_->select(s);
  });
  connect(model_, &TraceModel::trace_changed, this, [this] {
    // Dense attention keeps everything (recall and density 1): entropy is what tells its heads
    // apart. The choice follows the method only when it changes, not on every video frame.
    const QString method = model_->empty() ? QString() : QString::fromStdString(model_->trace().info.method);
    if (!method.isEmpty() && method != method_) {
      const auto column = method == vision::kDensePolicy ? vision::kEntropy : vision::kRecall;
      statistic_->setCurrentIndex(statistic_->findData(static_cast<int>(column)));
    }
    if (!method.isEmpty()) method_ = method;
    table_->set_trace(model_->shared_trace());
    follow_selection();
  });
  connect(model_, &TraceModel::selection_changed, this, &StatsPanel::follow_selection);
}

void StatsPanel::follow_selection() {
  if (model_->empty()) return;
  const auto& s = model_->selection();
  view_->setCurrentIndex(table_->index(s.layer, s.head));
}

}  // namespace sparsescope::viewer
