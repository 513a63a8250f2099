#pragma once
// The model controls: configuration, weights file, method, device and dtype (all remembered), and
// the buttons that run the current image or frame, run every frame of a video, or cancel.
#include <QWidget>

#include "viewer_settings.h"

class QComboBox;
class QLineEdit;
class QPushButton;

namespace sparsescope::viewer {

class RunPanel : public QWidget {
  Q_OBJECT

 public:
  explicit RunPanel(QWidget* parent = nullptr);

  RunSettings settings() const;
  void set_settings(const RunSettings& settings);
  /// Enables the buttons: runs need an image or video; "all frames" needs a video; cancel a job.
  void set_state(bool can_run, bool is_video, bool busy);

 Q_SIGNALS:
  void run_requested(bool all_frames);
  void cancel_requested();
  void settings_changed();

 private:
  QComboBox* model_;
  QLineEdit* weights_;
  QComboBox* method_;
  QComboBox* device_;
  QComboBox* dtype_;
  QPushButton* run_;
  QPushButton* run_all_;
  QPushButton* cancel_;
};

}  // namespace sparsescope::viewer
