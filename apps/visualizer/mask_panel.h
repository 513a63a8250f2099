#pragma once
// The mask view: the selected head's connectivity (what the pattern kept) beside its probabilities,
// zoomed and panned together, with the query's row highlighted; clicking a row selects its query.
#include <QWidget>

class QLabel;

namespace sparsescope::viewer {

class MatrixView;
class TraceModel;
class ViewOptions;

class MaskPanel : public QWidget {
  Q_OBJECT

 public:
  MaskPanel(TraceModel* model, ViewOptions* options, QWidget* parent = nullptr);

  MatrixView* mask_view() const { return mask_; }
  MatrixView* probs_view() const { return probs_; }

 private:
  void rerender();
  void highlight();

  // What the matrices of the current trace show: they depend on the site and head, not on the
  // query, whose change only moves the highlight.
  struct Shown {
    int layer = -1;
    int head = -1;
    int colormap = -1;
    bool operator==(const Shown& o) const { return layer == o.layer && head == o.head && colormap == o.colormap; }
  };

  TraceModel* model_;
  ViewOptions* options_;
  Shown shown_;
  MatrixView* mask_;
  MatrixView* probs_;
  QLabel* mask_title_;
  QLabel* probs_title_;
  QLabel* info_;
  int64_t pool_ = 1;
};

}  // namespace sparsescope::viewer
