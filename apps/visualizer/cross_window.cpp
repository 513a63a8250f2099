#include "cross_window.h"

#include <ATen/ATen.h>

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMouseEvent>
#include <QPainter>
#include <QVBoxLayout>
#include <algorithm>
#include <functional>

#include "sparsescope/kernels/error.h"

namespace sparsescope::viewer {

namespace {

// The `count` largest weights as "name weight" pairs, best first.
QString strongest(const at::Tensor& weights, const std::function<QString(int)>& name, int count = 5) {
  const auto k = std::min<int64_t>(count, weights.numel());
  const auto [values, indices] = weights.topk(k);
  QStringList parts;
  for (int64_t i = 0; i < k; ++i) {
    parts << QString("%1 %2").arg(name(static_cast<int>(indices[i].item<int64_t>()))).arg(values[i].item<double>(), 0, 'f', 2);
  }
  return parts.join(" · ");
}

}  // namespace

RegionView::RegionView(QWidget* parent) : QWidget(parent) {
  setMinimumSize(320, 240);
  setCursor(Qt::PointingHandCursor);
}

void RegionView::set_picture(const QImage& picture) {
  picture_ = picture;
  update();
}

QRectF RegionView::target() const {
  if (picture_.isNull()) return {};
  const QSizeF size = QSizeF(picture_.size()).scaled(QSizeF(this->size()), Qt::KeepAspectRatio);
  return QRectF(QPointF((width() - size.width()) / 2, (height() - size.height()) / 2), size);
}

QPointF RegionView::to_widget(QPointF p) const {
  const QRectF t = target();
  return {t.x() + p.x() * t.width() / picture_.width(), t.y() + p.y() * t.height() / picture_.height()};
}

void RegionView::paintEvent(QPaintEvent*) {
  QPainter painter(this);
  painter.fillRect(rect(), palette().window());
  if (!picture_.isNull()) {
    painter.setRenderHint(QPainter::SmoothPixmapTransform);
    painter.drawImage(target(), picture_);
  }
}

void RegionView::mousePressEvent(QMouseEvent* event) {
  const QRectF t = target();
  if (event->button() != Qt::LeftButton || !t.contains(event->position())) return;
  const QPointF p = event->position() - t.topLeft();
  Q_EMIT clicked({p.x() * picture_.width() / t.width(), p.y() * picture_.height() / t.height()});
}

CrossWindow::CrossWindow(QWidget* parent) : QWidget(parent) {
  setWindowTitle("Cross-attention");
  view_ = new RegionView(this);
  words_ = new QListWidget(this);
  words_->setFlow(QListView::LeftToRight);
  words_->setWrapping(true);
  words_->setResizeMode(QListView::Adjust);
  words_->setSpacing(3);
  words_->setMaximumHeight(64);
  heads_ = new QComboBox(this);
  layers_ = new QComboBox(this);
  caption_ = new QLabel(this);
  caption_->setWordWrap(true);
  caption_->setTextInteractionFlags(Qt::TextSelectableByMouse);

  connect(view_, &RegionView::clicked, this, [this](QPointF p) {
    if (!trace_) return;
    const int region = region_at(trace_->info.layout, p);
    if (region >= 0) select_region(region);
  });
  connect(words_, &QListWidget::itemClicked, this, [this](QListWidgetItem* item) { select_word(words_->row(item)); });
  connect(heads_, &QComboBox::activated, this, [this](int i) { select_head(i - 1); });
  connect(layers_, &QComboBox::activated, this, [this](int i) {
    selection_.layer = i;
    redraw();
  });

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel("Layer", this));
  controls->addWidget(layers_);
  controls->addWidget(new QLabel("Heads", this));
  controls->addWidget(heads_);
  controls->addStretch(1);
  controls->addWidget(new QLabel("Click a word to see the regions it attends; click a box to see the words it attends.", this));
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(controls);
  layout->addWidget(view_, 1);
  layout->addWidget(words_);
  layout->addWidget(caption_);
  resize(900, 760);
}

CrossWindow::~CrossWindow() = default;

void CrossWindow::set_trace(std::shared_ptr<const vision::Trace> trace) {
  SPARSESCOPE_CHECK(trace != nullptr, "no trace to display");
  const CrossSites sites = cross_sites(*trace);
  const auto& layout = trace->info.layout;
  trace_ = std::move(trace);
  selection_ = CrossSelection{};
  words_->clear();
  for (const auto& w : layout.words) words_->addItem(QString::fromStdString(w));
  heads_->clear();
  heads_->addItem("mean of heads");
  for (int64_t h = 0; h < sites.from_words.front()->heads(); ++h) heads_->addItem(QString("head %1").arg(h));
  layers_->clear();
  for (size_t l = 0; l < sites.from_words.size(); ++l) layers_->addItem(QString::number(l));
  setWindowTitle(QString("Cross-attention - %1").arg(QString::fromStdString(trace_->info.input)));
  redraw();
}

void CrossWindow::select_word(int index) {
  if (!trace_ || index < 0 || index >= static_cast<int>(trace_->info.layout.words.size())) return;
  selection_.word = true;
  selection_.index = index;
  redraw();
}

void CrossWindow::select_region(int index) {
  if (!trace_ || index < 0 || index >= static_cast<int>(trace_->info.layout.regions.size())) return;
  selection_.word = false;
  selection_.index = index;
  redraw();
}

void CrossWindow::select_head(int head) {
  if (!trace_ || head < -1 || head >= heads()) return;
  selection_.head = head;
  redraw();
}

void CrossWindow::set_colormap(vision::Colormap colormap) {
  colormap_ = colormap;
  redraw();
}

QString CrossWindow::caption() const { return caption_->text(); }

int CrossWindow::heads() const { return heads_->count() - 1; }

void CrossWindow::redraw() {
  if (!trace_) return;
  heads_->setCurrentIndex(selection_.head + 1);
  layers_->setCurrentIndex(selection_.layer);
  const auto& layout = trace_->info.layout;
  const at::Tensor weights = cross_weights(*trace_, selection_);
  const QString heads = selection_.head < 0 ? QString("mean of %1 heads").arg(this->heads())
                                            : QString("head %1").arg(selection_.head);
  auto word = [&](int i) { return QString("'%1'").arg(QString::fromStdString(layout.words[static_cast<size_t>(i)])); };
  auto region = [&](int i) { return QString("region %1 (%2)").arg(i).arg(region_label(layout, i)); };
  for (int i = 0; i < words_->count(); ++i) {
    QListWidgetItem* item = words_->item(i);
    item->setBackground(QBrush());
    item->setForeground(QBrush());
  }
  if (selection_.word) {
    words_->setCurrentRow(selection_.index);
    view_->set_picture(render_regions(*trace_, weights, -1, colormap_));
    caption_->setText(weights.defined() ? QString("%1 attends (%2): %3").arg(word(selection_.index), heads,
                                                                             strongest(weights, region))
                                        : QString("no attention from the words at this layer"));
    return;
  }
  words_->clearSelection();
  view_->set_picture(render_regions(*trace_, {}, selection_.index, colormap_));
  if (!weights.defined()) {
    caption_->setText(QString("%1: the trace has no attention from the regions at this layer").arg(region(selection_.index)));
    return;
  }
  const std::vector<QColor> colours = weight_colours(weights, colormap_);
  for (int i = 0; i < words_->count(); ++i) {
    const QColor& c = colours[static_cast<size_t>(i)];
    words_->item(i)->setBackground(c);
    words_->item(i)->setForeground(c.lightnessF() > 0.55 ? Qt::black : Qt::white);
  }
  caption_->setText(QString("%1 attends (%2): %3").arg(region(selection_.index), heads, strongest(weights, word)));
}

}  // namespace sparsescope::viewer
