#pragma once
// The overlay's legend: a colour bar with the values of its ends and middle.
#include <QImage>
#include <QWidget>

#include "sparsescope/vision/colormap.h"

namespace sparsescope::viewer {

class ColorLegend : public QWidget {
  Q_OBJECT

 public:
  explicit ColorLegend(QWidget* parent = nullptr);

  void set_scale(vision::Colormap colormap, double lo, double hi);
  /// The three labels drawn, top to bottom ("0.153", "0.0765", "0").
  QStringList labels() const;

  QSize sizeHint() const override { return {84, 240}; }

 protected:
  void paintEvent(QPaintEvent* event) override;

 private:
  vision::Colormap colormap_ = vision::Colormap::Viridis;
  double lo_ = 0;
  double hi_ = 1;
  QImage bar_;
};

}  // namespace sparsescope::viewer
