#include "sr_window.h"

#include <QComboBox>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QSpinBox>
#include <QVBoxLayout>

#include "matrix_view.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::viewer {

SrWindow::SrWindow(QWidget* parent) : QWidget(parent) {
  setWindowTitle("Super-resolution");
  auto* pictures = new QGridLayout;
  const char* titles[4] = {"LR (pixels repeated)", "Bicubic", "SR", "|SR - bicubic|"};
  for (int i = 0; i < 4; ++i) {
    views_[i] = new MatrixView(this);
    auto* title = new QLabel(titles[i], this);
    pictures->addWidget(title, (i / 2) * 2, i % 2);
    pictures->addWidget(views_[i], (i / 2) * 2 + 1, i % 2);
    connect(views_[i], &MatrixView::cell_clicked, this, &SrWindow::select_cell);
  }
  for (int i = 0; i < 4; ++i) {  // one zoom and pan for all four
    for (int j = 0; j < 4; ++j) {
      if (i != j) connect(views_[i], &MatrixView::view_changed, views_[j], &MatrixView::set_view);
    }
  }
  sites_ = new QComboBox(this);
  head_ = new QSpinBox(this);
  head_->setPrefix("head ");
  map_ = new MatrixView(this);
  caption_ = new QLabel(this);
  caption_->setWordWrap(true);
  status_ = new QLabel(this);
  status_->setWordWrap(true);
  connect(sites_, &QComboBox::currentIndexChanged, this, [this](int) { redraw_map(); });
  connect(head_, &QSpinBox::valueChanged, this, [this](int) { redraw_map(); });

  auto* side = new QVBoxLayout;
  side->addWidget(new QLabel("Recorded block", this));
  side->addWidget(sites_);
  side->addWidget(head_);
  side->addWidget(map_, 1);
  side->addWidget(caption_);
  side->addWidget(status_);
  auto* layout = new QHBoxLayout(this);
  layout->addLayout(pictures, 3);
  layout->addLayout(side, 1);
  resize(1200, 800);
}

SrWindow::~SrWindow() = default;

bool SrWindow::show_image(const vision::Image& image, const QString& weights, QString* error, int64_t record_size) {
  try {
    if (runner_.weights() != weights.toStdString()) runner_.load(weights.toStdString());
    comparison_ = runner_.run(image, 256, record_size);
  } catch (const std::exception& e) {
    if (error) *error = QString::fromStdString(e.what());
    return false;
  }
  views_[0]->set_image(comparison_.lr);
  views_[1]->set_image(comparison_.bicubic);
  views_[2]->set_image(comparison_.sr);
  views_[3]->set_image(comparison_.difference);
  const QSignalBlocker block(sites_);
  sites_->clear();
  for (const auto& site : comparison_.trace.sites) {
    sites_->addItem(QString::fromStdString(site.name + " (" + site.kind + ")"));
  }
  const vision::SrCrop& c = comparison_.crop;
  pixel_ = (c.height / 2) * c.width + c.width / 2;
  status_->setText(QString("%1, x%2: recorded the central %3 x %4 LR pixels; click one to see its kernels. "
                           "Largest |SR - bicubic|: %5 levels.")
                       .arg(QString::fromStdString(comparison_.trace.info.model))
                       .arg(comparison_.scale)
                       .arg(c.width)
                       .arg(c.height)
                       .arg(comparison_.max_difference, 0, 'f', 0));
  redraw_map();
  return true;
}

void SrWindow::select_site(int site) { sites_->setCurrentIndex(site); }

void SrWindow::select_head(int head) { head_->setValue(head); }

void SrWindow::select_cell(int column, int row) {
  if (const auto pixel = recorded_pixel(comparison_, column, row)) {
    pixel_ = *pixel;
    redraw_map();
  }
}

QString SrWindow::map_caption() const { return caption_->text(); }

void SrWindow::redraw_map() {
  const int site = sites_->currentIndex();
  if (site < 0 || site >= static_cast<int>(comparison_.trace.sites.size())) return;
  const vision::SiteTrace& s = comparison_.trace.sites[static_cast<size_t>(site)];
  head_->setRange(0, static_cast<int>(s.heads()) - 1);
  QString caption;
  try {
    map_->set_image(render_site_map(s, head_->value(), pixel_, &caption));
  } catch (const Error& e) {
    caption = QString::fromStdString(e.what());
  }
  caption_->setText(caption);
}

}  // namespace sparsescope::viewer
