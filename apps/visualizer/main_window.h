#pragma once
#include <QMainWindow>
#include <QString>

class QLabel;

namespace sparsescope::viewer {

/// The viewer's window. Today it shows an empty state and opened images; the trace views
/// (head grid, overlay, mask, stats) dock into it as they are built.
class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(QWidget* parent = nullptr);
  /// Loads an image; on failure returns false and sets `error` to a message naming the file.
  bool open_file(const QString& path, QString* error);

 protected:
  void resizeEvent(QResizeEvent* event) override;

 private:
  void choose_file();
  void show_image();

  QLabel* view_;
  QPixmap image_;
};

}  // namespace sparsescope::viewer
