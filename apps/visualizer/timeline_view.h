#pragma once
// The video timeline: a slider over the kept frames, play/pause and single-frame steps.
#include <QWidget>

class QLabel;
class QSlider;
class QTimer;
class QToolButton;

namespace sparsescope::viewer {

class TimelineView : public QWidget {
  Q_OBJECT

 public:
  explicit TimelineView(QWidget* parent = nullptr);

  /// `count` frames shown at `fps` while playing (a default rate when 0).
  void set_frames(int count, double fps);
  void set_current(int frame);  // no frame_selected signal
  int current() const;
  void set_status(const QString& text);
  bool playing() const;

  void play();
  void pause();
  void step(int delta);  // stops at the ends

 Q_SIGNALS:
  void frame_selected(int frame);

 private:
  QToolButton* play_;
  QToolButton* back_;
  QToolButton* forward_;
  QSlider* slider_;
  QLabel* status_;
  QTimer* timer_;
};

}  // namespace sparsescope::viewer
