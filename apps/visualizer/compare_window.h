#pragma once
// Several traces of one image side by side (e.g. the MAE and MAE-LUT encoders): each one's class-token
// attention at the chosen layer (mean of heads) over its picture, and their mean attention distance
// per layer in one plot. Loads and draws on the GUI thread (a few small maps per trace).
#include <QString>
#include <QWidget>
#include <memory>
#include <utility>
#include <vector>

#include "distance_plot.h"
#include "sparsescope/vision/trace.h"

class QLabel;
class QSpinBox;

namespace sparsescope::viewer {

class CompareWindow : public QWidget {
  Q_OBJECT

 public:
  explicit CompareWindow(QWidget* parent = nullptr);
  ~CompareWindow() override;

  /// Reads the trace files (named by their file names) and shows them; false with the reason in
  /// `error` (a file that is not a trace, a trace without attention over a patch grid), nothing changed.
  bool open(const QStringList& paths, QString* error);
  /// The layer-th attention site of each trace (those with fewer layers show nothing).
  void select_layer(int layer);

  const std::vector<DistanceSeries>& series() const { return series_; }
  const QImage& plot() const { return plot_image_; }
  /// The map drawn for trace `index` at the selected layer (null when it has no such layer).
  const QImage& picture(int index) const { return pictures_.at(static_cast<size_t>(index)); }

 private:
  void redraw();

  std::vector<std::pair<QString, std::shared_ptr<const vision::Trace>>> traces_;
  std::vector<DistanceSeries> series_;
  std::vector<QImage> pictures_;
  QImage plot_image_;
  std::vector<QLabel*> picture_labels_, caption_labels_;
  QWidget* row_ = nullptr;
  QSpinBox* layer_ = nullptr;
  QLabel* plot_ = nullptr;
  int selected_ = 0;
};

}  // namespace sparsescope::viewer
