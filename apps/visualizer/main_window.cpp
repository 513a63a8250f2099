#include "main_window.h"

#include <QAction>
#include <QFileDialog>
#include <QFileInfo>
#include <QImageReader>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QStatusBar>

namespace sparsescope::viewer {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent), view_(new QLabel(this)) {
  setWindowTitle("sparsescope viewer");
  view_->setAlignment(Qt::AlignCenter);
  view_->setMinimumSize(320, 240);
  view_->setText("Open an image, a video or a trace\n(File > Open, or drop a file here)");
  setCentralWidget(view_);

  auto* file = menuBar()->addMenu("&File");
  auto* open = file->addAction("&Open...", this, &MainWindow::choose_file);
  open->setShortcut(QKeySequence::Open);
  auto* quit = file->addAction("&Quit", this, &QWidget::close);
  quit->setShortcut(QKeySequence::Quit);
  statusBar()->showMessage("No file open");
  resize(960, 640);
}

bool MainWindow::open_file(const QString& path, QString* error) {
  QImageReader reader(path);
  QImage image = reader.read();
  if (image.isNull()) {
    *error = QString("cannot open '%1': %2").arg(path, reader.errorString());
    return false;
  }
  image_ = QPixmap::fromImage(image);
  show_image();
  setWindowTitle(QString("%1 - sparsescope viewer").arg(QFileInfo(path).fileName()));
  statusBar()->showMessage(QString("%1: %2 x %3").arg(path).arg(image.width()).arg(image.height()));
  return true;
}

void MainWindow::choose_file() {
  const QString path = QFileDialog::getOpenFileName(this, "Open", QString(), "Images (*.png *.jpg *.jpeg *.bmp *.gif)");
  if (path.isEmpty()) return;
  QString error;
  if (!open_file(path, &error)) QMessageBox::warning(this, "sparsescope viewer", error);
}

void MainWindow::resizeEvent(QResizeEvent* event) {
  QMainWindow::resizeEvent(event);
  show_image();
}

void MainWindow::show_image() {
  if (image_.isNull()) return;
  view_->setPixmap(image_.scaled(view_->size(), Qt::KeepAspectRatio, Qt::SmoothTransformation));
}

}  // namespace sparsescope::viewer
