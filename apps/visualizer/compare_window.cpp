#include "compare_window.h"

#include <ATen/ATen.h>

#include <QDir>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QPixmap>
#include <QSpinBox>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "image_convert.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_maps.h"
#include "sparsescope/vision/overlay.h"

namespace sparsescope::viewer {

CompareWindow::CompareWindow(QWidget* parent) : QWidget(parent) {
  setWindowTitle("Compare traces");
  row_ = new QWidget(this);
  new QHBoxLayout(row_);
  layer_ = new QSpinBox(this);
  layer_->setPrefix("layer ");
  plot_ = new QLabel(this);
  connect(layer_, &QSpinBox::valueChanged, this, [this](int layer) { select_layer(layer); });
  auto* controls = new QHBoxLayout;
  controls->addWidget(layer_);
  controls->addWidget(new QLabel("class-token attention, mean of heads, at this layer of each trace", this));
  controls->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(controls);
  layout->addWidget(row_, 1);
  layout->addWidget(plot_);
  resize(900, 720);
}

CompareWindow::~CompareWindow() = default;

bool CompareWindow::open(const QStringList& paths, QString* error) {
  std::vector<std::pair<QString, std::shared_ptr<const vision::Trace>>> traces;
  std::vector<DistanceSeries> series;
  try {
    SPARSESCOPE_CHECK(!paths.isEmpty(), "no trace to compare");
    for (const QString& path : paths) {
      auto trace = std::make_shared<const vision::Trace>(vision::load_trace(path.toStdString()));
      SPARSESCOPE_CHECK(trace->info.layout.kind == vision::kGridLayout && trace->info.layout.grid.size() == 3 &&
                            !vision::attention_sites(*trace).empty(),
                        "'", path.toStdString(), "' holds no attention over a patch grid to compare");
      const QFileInfo file(path);  // "folder/file": traces of one image share their file name
      const QString name = file.dir().dirName() + "/" + file.fileName();
      series.push_back(distance_series(*trace, name));
      traces.emplace_back(name, std::move(trace));
    }
  } catch (const std::exception& e) {
    if (error) *error = QString::fromStdString(e.what());
    return false;
  }
  traces_ = std::move(traces);
  series_ = std::move(series);
  for (QLabel* l : picture_labels_) l->deleteLater();
  for (QLabel* l : caption_labels_) l->deleteLater();
  picture_labels_.clear();
  caption_labels_.clear();
  int layers = 0;
  for (const auto& [name, trace] : traces_) {
    auto* column = new QVBoxLayout;
    picture_labels_.push_back(new QLabel(row_));
    picture_labels_.back()->setAlignment(Qt::AlignCenter);
    caption_labels_.push_back(new QLabel(row_));
    caption_labels_.back()->setWordWrap(true);
    column->addWidget(picture_labels_.back(), 1);
    column->addWidget(caption_labels_.back());
    static_cast<QHBoxLayout*>(row_->layout())->addLayout(column);
    layers = std::max(layers, static_cast<int>(vision::attention_sites(*trace).size()));
  }
  plot_image_ = render_distance_plot(series_, QSize(860, 300));
  plot_->setPixmap(QPixmap::fromImage(plot_image_));
  layer_->blockSignals(true);
  layer_->setRange(0, std::max(0, layers - 1));
  layer_->setValue(std::min(selected_, layers - 1));
  layer_->blockSignals(false);
  selected_ = layer_->value();
  redraw();
  return true;
}

void CompareWindow::select_layer(int layer) {
  selected_ = std::clamp(layer, layer_->minimum(), layer_->maximum());
  if (layer_->value() != selected_) layer_->setValue(selected_);  // comes back here once
  redraw();
}

void CompareWindow::redraw() {
  pictures_.assign(traces_.size(), QImage());
  for (size_t i = 0; i < traces_.size(); ++i) {
    const vision::Trace& trace = *traces_[i].second;
    const auto sites = vision::attention_sites(trace);
    QString caption = traces_[i].first;
    if (selected_ < static_cast<int>(sites.size())) {
      const vision::SiteTrace& site = *sites[static_cast<size_t>(selected_)];
      const at::Tensor map = vision::query_maps(site, trace.info.layout, 0).mean(0)[0];  // [gh, gw]
      pictures_[i] = to_qimage(vision::map_over_image(map, trace, {}));
      const double d = series_[i].layers[static_cast<size_t>(selected_)];
      caption += QString("\n%1, distance %2 patches")
                     .arg(QString::fromStdString(site.name))
                     .arg(std::isfinite(d) ? QString::number(d, 'f', 2) : QString("n/a"));
    } else {
      caption += QString("\n(%1 layers)").arg(sites.size());
    }
    picture_labels_[i]->setPixmap(pictures_[i].isNull() ? QPixmap()
                                                        : QPixmap::fromImage(pictures_[i].scaled(
                                                              256, 256, Qt::KeepAspectRatio, Qt::SmoothTransformation)));
    caption_labels_[i]->setText(caption);
  }
}

}  // namespace sparsescope::viewer
