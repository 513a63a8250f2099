#pragma once
// Display options shared by the views (colormap) and the overlay's opacity. Widget-free.
#include <QObject>

#include "sparsescope/vision/colormap.h"

namespace sparsescope::viewer {

class ViewOptions : public QObject {
  Q_OBJECT

 public:
  explicit ViewOptions(QObject* parent = nullptr) : QObject(parent) {}

  vision::Colormap colormap() const { return colormap_; }
  double opacity() const { return opacity_; }
  void set_colormap(vision::Colormap colormap);
  void set_opacity(double opacity);  // clamped to [0, 1]

 Q_SIGNALS:
  void changed();

 private:
  vision::Colormap colormap_ = vision::Colormap::Viridis;
  double opacity_ = 0.6;
};

}  // namespace sparsescope::viewer
