#pragma once
// The super-resolution window: LR (pixels repeated), bicubic, SR and their difference side by side
// with one zoom and pan for all four; a click on a pixel of the recorded square shows each group's
// dynamic kernel there, and the channel-attention matrices of the SparseGSA blocks with their
// sparsity per head. Runs on the GUI thread (a lightweight SR network over a photo takes a second or so).
#include <QWidget>
#include <memory>

#include "sparsescope/vision/image.h"
#include "sr_compare.h"

class QComboBox;
class QLabel;
class QSpinBox;

namespace sparsescope::viewer {

class MatrixView;

class SrWindow : public QWidget {
  Q_OBJECT

 public:
  explicit SrWindow(QWidget* parent = nullptr);
  ~SrWindow() override;

  /// Loads the weights and runs them on `image`; false with the reason in `error` (nothing changes).
  bool show_image(const vision::Image& image, const QString& weights, QString* error, int64_t record_size = 64);

  /// Selects a site of the recording (in the trace's order), its head and, for kernels, the
  /// picture cell whose LR pixel to show.
  void select_site(int site);
  void select_head(int head);
  void select_cell(int column, int row);

  const SrComparison& comparison() const { return comparison_; }
  MatrixView* view(int index) const { return views_[index]; }  // 0 LR, 1 bicubic, 2 SR, 3 difference
  MatrixView* map_view() const { return map_; }
  QString map_caption() const;

 private:
  void redraw_map();

  SrRunner runner_;
  SrComparison comparison_;
  MatrixView* views_[4] = {};
  MatrixView* map_ = nullptr;
  QComboBox* sites_ = nullptr;
  QSpinBox* head_ = nullptr;
  QLabel* caption_ = nullptr;
  QLabel* status_ = nullptr;
  int64_t pixel_ = 0;
};

}  // namespace sparsescope::viewer
