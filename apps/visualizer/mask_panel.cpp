#include "mask_panel.h"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>

#include "mask_render.h"
#include "sparsescope/vision/attention_maps.h"
#include "matrix_view.h"
#include "trace_model.h"
#include "view_options.h"

namespace sparsescope::viewer {

MaskPanel::MaskPanel(TraceModel* model, ViewOptions* options, QWidget* parent)
    : QWidget(parent),
      model_(model),
      options_(options),
      mask_(new MatrixView(this)),
      probs_(new MatrixView(this)),
      mask_title_(new QLabel("connectivity", this)),
      probs_title_(new QLabel("probabilities", this)),
      info_(new QLabel(this)) {
  auto* fit = new QPushButton("Fit", this);
  fit->setToolTip("Show the whole matrices (wheel zooms, drag pans, a click selects the row's query)");
  auto* layout = new QGridLayout(this);
  layout->addWidget(mask_title_, 0, 0);
  layout->addWidget(probs_title_, 0, 1);
  layout->addWidget(mask_, 1, 0);
  layout->addWidget(probs_, 1, 1);
  auto* bottom = new QHBoxLayout;
  bottom->addWidget(info_, 1);
  bottom->addWidget(fit);
  layout->addLayout(bottom, 2, 0, 1, 2);
  layout->setRowStretch(1, 1);

  connect(fit, &QPushButton::clicked, mask_, &MatrixView::fit);
  connect(mask_, &MatrixView::view_changed, probs_, &MatrixView::set_view);
  connect(probs_, &MatrixView::view_changed, mask_, &MatrixView::set_view);
  for (MatrixView* v : {mask_, probs_}) {
    connect(v, &MatrixView::row_clicked, this, [this](int row) {
      if (model_->empty()) return;
      const auto& s = model_->trace().sites[model_->selection().layer];
      const int64_t index = std::min<int64_t>(row * pool_, s.queries - 1);
      model_->select_query(vision::layout_token(s, model_->trace().info.layout, index));
    });
  }
  connect(model_, &TraceModel::trace_changed, this, [this] {
    shown_ = {};
    rerender();
  });
  connect(model_, &TraceModel::selection_changed, this, &MaskPanel::rerender);
  connect(options_, &ViewOptions::changed, this, &MaskPanel::rerender);
  rerender();
}

void MaskPanel::rerender() {
  if (model_->empty()) {
    mask_->set_image({});
    probs_->set_image({});
    info_->clear();
    shown_ = {};
    return;
  }
  const auto& s = model_->selection();
  const Shown next{s.layer, s.head, static_cast<int>(options_->colormap())};
  if (next == shown_) {
    highlight();
    return;
  }
  shown_ = next;
  const auto& site = model_->trace().sites[s.layer];
  const MaskImages images = render_mask(site, s.head, options_->colormap());
  pool_ = images.pool;
  mask_->set_image(images.mask);
  probs_->set_image(images.probs);
  const QString cells = pool_ == 1 ? QString("token x token")
                                   : QString("block x block (%1 x %1 tokens, mean)").arg(pool_);
  mask_title_->setText(QString("connectivity: %1").arg(QString::fromStdString(site.pattern)));
  probs_title_->setText(QString("probabilities (colours up to %1)").arg(images.probs_hi, 0, 'g', 3));
  info_->setText(QString("%1, head %2: %3 x %4 queries x keys, %5")
                     .arg(QString::fromStdString(site.name))
                     .arg(s.head)
                     .arg(site.queries)
                     .arg(site.keys)
                     .arg(cells));
  if (images.mask.isNull()) mask_title_->setText("connectivity: not recorded");
  highlight();
}

void MaskPanel::highlight() {
  int row = -1;  // the query's row, when the site sees it (a site over the visible patches may not)
  if (!model_->empty()) {
    const auto& s = model_->selection();
    const int64_t own = vision::site_token(model_->trace().sites[s.layer], model_->trace().info.layout, s.query);
    if (own >= 0) row = static_cast<int>(own / pool_);
  }
  mask_->set_highlighted_row(row);
  probs_->set_highlighted_row(row);
}

}  // namespace sparsescope::viewer
