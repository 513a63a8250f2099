#include "timeline_view.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QSlider>
#include <QStyle>
#include <QTimer>
#include <QToolButton>
#include <algorithm>
#include <cmath>

namespace sparsescope::viewer {

namespace {

constexpr double kDefaultFps = 10;

}  // namespace

TimelineView::TimelineView(QWidget* parent)
    : QWidget(parent),
      play_(new QToolButton(this)),
      back_(new QToolButton(this)),
      forward_(new QToolButton(this)),
      slider_(new QSlider(Qt::Horizontal, this)),
      status_(new QLabel(this)),
      timer_(new QTimer(this)) {
  play_->setIcon(style()->standardIcon(QStyle::SP_MediaPlay));
  play_->setToolTip("Play / pause (Space)");
  back_->setIcon(style()->standardIcon(QStyle::SP_MediaSeekBackward));
  back_->setToolTip("Previous frame (,)");
  back_->setShortcut(Qt::Key_Comma);
  forward_->setIcon(style()->standardIcon(QStyle::SP_MediaSeekForward));
  forward_->setToolTip("Next frame (.)");
  forward_->setShortcut(Qt::Key_Period);
  play_->setShortcut(Qt::Key_Space);
  status_->setMinimumWidth(220);

  auto* layout = new QHBoxLayout(this);
  layout->addWidget(back_);
  layout->addWidget(play_);
  layout->addWidget(forward_);
  layout->addWidget(slider_, 1);
  layout->addWidget(status_);

  connect(play_, &QToolButton::clicked, this, [this] { playing() ? pause() : play(); });
  connect(back_, &QToolButton::clicked, this, [this] { step(-1); });
  connect(forward_, &QToolButton::clicked, this, [this] { step(1); });
  connect(slider_, &QSlider::valueChanged, this, &TimelineView::frame_selected);
  connect(timer_, &QTimer::timeout, this, [this] {
    if (current() >= slider_->maximum()) {
      pause();
      return;
    }
    step(1);
  });
  set_frames(0, 0);
}

void TimelineView::set_frames(int count, double fps) {
  pause();
  const QSignalBlocker block(slider_);
  slider_->setRange(0, std::max(0, count - 1));
  slider_->setValue(0);
  timer_->setInterval(static_cast<int>(std::lround(1000.0 / (fps > 0 ? fps : kDefaultFps))));
  setEnabled(count > 1);
}

void TimelineView::set_current(int frame) {
  const QSignalBlocker block(slider_);
  slider_->setValue(frame);
}

int TimelineView::current() const { return slider_->value(); }

void TimelineView::set_status(const QString& text) { status_->setText(text); }

bool TimelineView::playing() const { return timer_->isActive(); }

void TimelineView::play() {
  if (current() >= slider_->maximum()) slider_->setValue(0);
  timer_->start();
  play_->setIcon(style()->standardIcon(QStyle::SP_MediaPause));
}

void TimelineView::pause() {
  timer_->stop();
  play_->setIcon(style()->standardIcon(QStyle::SP_MediaPlay));
}

void TimelineView::step(int delta) { slider_->setValue(std::clamp(current() + delta, 0, slider_->maximum())); }

}  // namespace sparsescope::viewer
