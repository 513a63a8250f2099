#pragma once
// Mean attention distance per layer of several traces as a line plot (widget-free): how far each
// model's heads look, the comparison MAE-LUT's paper makes between MAE and LUT encoders.
#include <QImage>
#include <QSize>
#include <QString>
#include <vector>

#include "sparsescope/vision/trace.h"

namespace sparsescope::viewer {

struct DistanceSeries {
  QString name;
  std::vector<double> layers;  // per attention site in order: the mean over heads, NaN where not computable
};

/// The mean attention distance (in patches, attention_maps.h) of each attention site of `trace`,
/// averaged over its heads; NaN for sites without full self-attention maps over the grid.
DistanceSeries distance_series(const vision::Trace& trace, const QString& name);

/// Lines with points, one colour per series, layers on x and distance on y from 0, a legend;
/// NaN points are left out.
QImage render_distance_plot(const std::vector<DistanceSeries>& series, QSize size);

}  // namespace sparsescope::viewer
