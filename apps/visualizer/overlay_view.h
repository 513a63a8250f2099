#pragma once
// Shows the rendered overlay scaled to fit, marks the query's patch, and turns clicks into patch
// picks. Displays only: the picture comes from render_overlay().
#include <QImage>
#include <QWidget>
#include <optional>

#include "token_grid.h"

namespace sparsescope::viewer {

class OverlayView : public QWidget {
  Q_OBJECT

 public:
  explicit OverlayView(QWidget* parent = nullptr);

  /// `image` covers a patch grid of `rows` x `cols`; `marked` is the query's patch (none for
  /// prefix tokens such as CLS).
  void set_picture(const QImage& image, int64_t rows, int64_t cols, std::optional<TokenPosition> marked);
  void set_placeholder(const QString& text);
  const QImage& picture() const { return image_; }
  /// Where the picture is drawn, in widget coordinates (empty without one).
  QRect picture_rect() const;

  QSize sizeHint() const override { return {480, 480}; }

 Q_SIGNALS:
  void patch_clicked(int64_t row, int64_t col);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;

 private:
  QImage image_;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  std::optional<TokenPosition> marked_;
  QString placeholder_;
};

}  // namespace sparsescope::viewer
