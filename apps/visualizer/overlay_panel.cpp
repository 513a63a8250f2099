#include "overlay_panel.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSignalBlocker>
#include <QSlider>
#include <QSpinBox>
#include <QVBoxLayout>
#include <cmath>
#include <vector>

#include "color_legend.h"
#include "map_render.h"
#include "overlay_view.h"
#include "sparsescope/vision/prediction.h"
#include "token_grid.h"
#include "trace_model.h"
#include "view_options.h"

namespace sparsescope::viewer {

namespace {

constexpr vision::Colormap kColormaps[] = {vision::Colormap::Viridis, vision::Colormap::Magma,
                                           vision::Colormap::Inferno, vision::Colormap::Turbo,
                                           vision::Colormap::Gray};

}  // namespace

OverlayPanel::OverlayPanel(TraceModel* model, ViewOptions* options, QWidget* parent)
    : QWidget(parent),
      model_(model),
      options_(options),
      view_(new OverlayView(this)),
      legend_(new ColorLegend(this)),
      caption_(new QLabel(this)),
      prediction_(new QLabel(this)),
      layer_(new QSpinBox(this)),
      head_(new QSpinBox(this)),
      kind_(new QComboBox(this)),
      query_(new QLabel(this)),
      cls_(new QPushButton("CLS", this)),
      colormap_(new QComboBox(this)),
      opacity_(new QSlider(Qt::Horizontal, this)) {
  kind_->addItems({"head", "mean of heads", "rollout"});
  for (auto c : kColormaps) colormap_->addItem(vision::to_string(c));
  opacity_->setRange(0, 100);
  opacity_->setFixedWidth(110);
  layer_->setToolTip("Layer (attention site)");
  head_->setToolTip("Head of the layer");
  cls_->setToolTip("Query the class token (or click a patch of the image)");
  query_->setMinimumWidth(120);

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel("Layer", this));
  controls->addWidget(layer_);
  controls->addWidget(new QLabel("Head", this));
  controls->addWidget(head_);
  controls->addWidget(kind_);
  controls->addSpacing(12);
  controls->addWidget(new QLabel("Query", this));
  controls->addWidget(query_);
  controls->addWidget(cls_);
  controls->addStretch(1);
  controls->addWidget(new QLabel("Colormap", this));
  controls->addWidget(colormap_);
  controls->addWidget(new QLabel("Opacity", this));
  controls->addWidget(opacity_);

  auto* picture = new QHBoxLayout;
  picture->addWidget(view_, 1);
  picture->addWidget(legend_);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(controls);
  layout->addLayout(picture, 1);
  layout->addWidget(caption_);
  layout->addWidget(prediction_);

  connect(layer_, &QSpinBox::valueChanged, this, [this](int v) {
    if (!model_->empty() && v != model_->selection().layer) model_->select_layer(v);
  });
  connect(head_, &QSpinBox::valueChanged, this, [this](int v) {
    if (!model_->empty() && v != model_->selection().head) model_->select_head(v);
  });
  connect(kind_, &QComboBox::currentIndexChanged, this, [this](int i) {
    if (!model_->empty()) model_->select_kind(static_cast<MapKind>(i));
  });
  connect(cls_, &QPushButton::clicked, this, [this] {
    if (!model_->empty()) model_->select_query(0);
  });
  connect(colormap_, &QComboBox::currentIndexChanged, this,
          [this](int i) { options_->set_colormap(kColormaps[i]); });
  connect(opacity_, &QSlider::valueChanged, this, [this](int v) { options_->set_opacity(v / 100.0); });
  connect(view_, &OverlayView::patch_clicked, this, [this](int64_t row, int64_t col) {
    if (model_->empty()) return;
    model_->select_query(patch_token(model_->trace().info.layout, model_->query_frame(), row, col));
  });
  connect(model_, &TraceModel::trace_changed, this, &OverlayPanel::redraw);
  connect(model_, &TraceModel::selection_changed, this, &OverlayPanel::redraw);
  connect(options_, &ViewOptions::changed, this, &OverlayPanel::redraw);
  redraw();
}

void OverlayPanel::set_frame_image(const QImage& image) {
  frame_image_ = image;
  if (model_->empty()) redraw();  // otherwise the trace's picture is on show
}

void OverlayPanel::sync_controls() {
  const QSignalBlocker b1(layer_), b2(head_), b3(kind_), b4(colormap_), b5(opacity_);
  for (int i = 0; i < static_cast<int>(std::size(kColormaps)); ++i)
    if (kColormaps[i] == options_->colormap()) colormap_->setCurrentIndex(i);
  opacity_->setValue(static_cast<int>(std::lround(options_->opacity() * 100)));
  const bool any = !model_->empty();
  for (QWidget* w : {static_cast<QWidget*>(layer_), static_cast<QWidget*>(head_), static_cast<QWidget*>(kind_),
                     static_cast<QWidget*>(cls_)})
    w->setEnabled(any);
  if (!any) {
    query_->setText("-");
    return;
  }
  const auto& s = model_->selection();
  layer_->setRange(0, model_->layers() - 1);
  layer_->setValue(s.layer);
  head_->setRange(0, model_->heads(s.layer) - 1);
  head_->setValue(s.head);
  kind_->setCurrentIndex(static_cast<int>(s.kind));
  query_->setText(QString("%1 (token %2)")
                      .arg(QString::fromStdString(describe_token(model_->trace().info.layout, s.query)))
                      .arg(s.query));
}

void OverlayPanel::redraw() {
  sync_controls();
  const auto& top = model_->empty() ? std::vector<vision::ClassScore>() : model_->trace().info.topk;
  prediction_->setText(top.empty() ? QString() : "Predicted: " + QString::fromStdString(vision::describe(top)));
  prediction_->setVisible(!top.empty());
  if (model_->empty()) {
    caption_->clear();
    if (frame_image_.isNull()) {
      view_->set_placeholder("Open an image, a video or a trace\n(File > Open, or drop a file here)");
    } else {
      view_->set_picture(frame_image_, 0, 0, std::nullopt);
    }
    return;
  }
  const RenderedMap rendered =
      render_overlay(model_->background(), model_->selected_map(), options_->colormap(), options_->opacity());
  const auto& layout = model_->trace().info.layout;
  const GridExtent grid = grid_extent(layout);
  view_->set_picture(rendered.image, grid.rows, grid.cols, locate_token(layout, model_->selection().query));
  legend_->set_scale(options_->colormap(), rendered.lo, rendered.hi);
  QString caption = model_->describe_selection();
  if (model_->selection().kind == MapKind::Rollout && !model_->rollout_maps().defined())
    caption += " - unavailable: " + model_->rollout_error();
  caption_->setText(caption);
}

}  // namespace sparsescope::viewer
