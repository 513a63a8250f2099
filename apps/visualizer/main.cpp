// sparsescope-viewer [FILE] [--screenshot OUT.png]
#include <QApplication>
#include <QCommandLineParser>

#include <cstdio>

#include "main_window.h"
#include "sparsescope/kernels/version.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("sparsescope-viewer");
  QApplication::setApplicationVersion(QString::fromStdString(sparsescope::version()));

  QCommandLineParser parser;
  parser.setApplicationDescription("Inspect attention heads and sparsity masks.");
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument("file", "Image to open.", "[FILE]");
  QCommandLineOption screenshot("screenshot", "Render the window, save it to OUT.png and exit.", "OUT.png");
  parser.addOption(screenshot);
  parser.process(app);

  sparsescope::viewer::MainWindow window;
  const QStringList files = parser.positionalArguments();
  const bool batch = parser.isSet(screenshot);
  if (!files.isEmpty()) {
    QString error;
    if (!window.open_file(files.front(), &error)) {
      std::fprintf(stderr, "sparsescope-viewer: %s\n", qPrintable(error));
      if (batch) return 1;
    }
  }
  window.show();
  if (!batch) return QApplication::exec();

  QApplication::processEvents();
  const QString out = parser.value(screenshot);
  if (!window.grab().save(out)) {
    std::fprintf(stderr, "sparsescope-viewer: cannot write screenshot '%s'\n", qPrintable(out));
    return 1;
  }
  return 0;
}
