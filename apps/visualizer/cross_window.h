#pragma once
// The cross-attention window, for traces with a cross layout (DCLIP's teacher: a caption's words and
// an image's regions attending across, `sparsescope dclip --record`): the picture with its region
// boxes and the words as a row of chips. Click a word to colour each box by the attention that word
// gives it; click a box to colour the words by the attention that region gives them; one head or
// the mean over heads.
#include <QWidget>
#include <memory>

#include "cross_render.h"

class QComboBox;
class QLabel;
class QListWidget;

namespace sparsescope::viewer {

/// The picture scaled to fit, keeping its aspect; reports clicks in picture pixels.
class RegionView : public QWidget {
  Q_OBJECT

 public:
  explicit RegionView(QWidget* parent = nullptr);
  void set_picture(const QImage& picture);
  const QImage& picture() const { return picture_; }
  /// Where picture pixel `p` is drawn in the widget.
  QPointF to_widget(QPointF p) const;

 Q_SIGNALS:
  void clicked(QPointF picture_point);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;

 private:
  QRectF target() const;
  QImage picture_;
};

class CrossWindow : public QWidget {
  Q_OBJECT

 public:
  explicit CrossWindow(QWidget* parent = nullptr);
  ~CrossWindow() override;

  /// Shows `trace` with its first word selected; throws sparsescope::Error (nothing changes) when
  /// it is not a cross trace.
  void set_trace(std::shared_ptr<const vision::Trace> trace);
  void select_word(int index);
  void select_region(int index);
  void select_head(int head);  // -1: the mean over heads
  void set_colormap(vision::Colormap colormap);

  const CrossSelection& selection() const { return selection_; }
  QString caption() const;
  int heads() const;
  RegionView* region_view() const { return view_; }
  QListWidget* words() const { return words_; }

 private:
  void redraw();

  std::shared_ptr<const vision::Trace> trace_;
  CrossSelection selection_;
  vision::Colormap colormap_ = vision::Colormap::Viridis;
  RegionView* view_ = nullptr;
  QListWidget* words_ = nullptr;
  QComboBox* heads_ = nullptr;
  QComboBox* layers_ = nullptr;
  QLabel* caption_ = nullptr;
};

}  // namespace sparsescope::viewer
