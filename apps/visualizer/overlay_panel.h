#pragma once
// The main view: the selected map over the image with its legend, and the controls that choose
// layer, head (or mean / rollout), query, colormap and opacity. Reads the TraceModel, draws with
// render_overlay(), and turns user input into model selections.
#include <QImage>
#include <QWidget>

class QComboBox;
class QLabel;
class QPushButton;
class QSlider;
class QSpinBox;

namespace sparsescope::viewer {

class ColorLegend;
class OverlayView;
class TraceModel;
class ViewOptions;

class OverlayPanel : public QWidget {
  Q_OBJECT

 public:
  OverlayPanel(TraceModel* model, ViewOptions* options, QWidget* parent = nullptr);

  /// The picture shown while the model holds no trace (an opened image before its run); null for
  /// the empty state.
  void set_frame_image(const QImage& image);

  OverlayView* view() const { return view_; }
  /// The line naming the model's top classes ("Predicted: ..."); hidden when the trace has none.
  QLabel* prediction() const { return prediction_; }
  ColorLegend* legend() const { return legend_; }

 private:
  void redraw();
  void sync_controls();

  TraceModel* model_;
  ViewOptions* options_;
  QImage frame_image_;
  OverlayView* view_;
  ColorLegend* legend_;
  QLabel* caption_;
  QLabel* prediction_;
  QSpinBox* layer_;
  QSpinBox* head_;
  QComboBox* kind_;
  QLabel* query_;
  QPushButton* cls_;
  QComboBox* colormap_;
  QSlider* opacity_;
};

}  // namespace sparsescope::viewer
