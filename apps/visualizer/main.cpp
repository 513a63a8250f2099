// sparsescope-viewer [FILE] [--weights FILE [--model NAME] [--method M]] [--layer L --head H --query Q]
//                    [--colormap NAME] [--sr SR_WEIGHTS] [--compare TRACE...] [--screenshot OUT.png]
// Only wiring: command line -> settings, window, file, run and selection. With --screenshot the
// window is rendered (the offscreen platform works), saved and the program exits: 0 on success,
// 1 when the file could not be opened, the run failed or the PNG could not be written, 2 for usage
// errors (a layer, head or query out of range, an unknown model or colormap).
#include <QApplication>
#include <QListWidget>
#include <QCommandLineParser>
#include <QSettings>
#include <QTemporaryDir>
#include <cstdio>
#include <memory>

#include "compare_window.h"
#include "cross_window.h"
#include "document.h"
#include "main_window.h"
#include "sr_window.h"
#include "model_runner.h"
#include "run_panel.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/kernels/version.h"
#include "sparsescope/vision/colormap.h"
#include "sparsescope/vision/model_spec.h"
#include "sparsescope/vision/vit.h"
#include "trace_model.h"
#include "view_options.h"
#include "viewer_settings.h"

namespace {

int fail(int status, const QString& message) {
  std::fprintf(stderr, "sparsescope-viewer: %s\n", qPrintable(message));
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sparsescope::viewer;
  QApplication app(argc, argv);
  QApplication::setOrganizationName("sparsescope");
  QApplication::setApplicationName("sparsescope-viewer");
  QApplication::setApplicationVersion(QString::fromStdString(sparsescope::version()));

  QCommandLineParser parser;
  parser.setApplicationDescription("Inspect attention heads and sparsity masks of images, videos and traces.");
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument("file", "Image, video or trace (.safetensors) to open.", "[FILE]");
  const QCommandLineOption model(
      "model", "Model configuration to run on the image or video (timm's names; default: the weights' model card).",
      "NAME");
  const QCommandLineOption weights(
      "weights", "Weights to run on the image or video (safetensors or .pth, timm's names; e.g. the bundled "
      "assets/models/vit_fmnist.safetensors).", "FILE");
  const QCommandLineOption method(
      "method", "Attention method, one of `sparsescope methods` (default: the one the weights were trained for).", "METHOD");
  const QCommandLineOption device("device", "cpu or cuda.", "DEVICE");
  const QCommandLineOption dtype("dtype", "fp32, fp16 or bf16.", "DTYPE");
  const QCommandLineOption layer("layer", "Layer (attention site) to select.", "L");
  const QCommandLineOption head("head", "Head to select.", "H");
  const QCommandLineOption query("query", "Query token to select (0 is the class token; the word of a cross-attention trace).", "Q");
  const QCommandLineOption colormap("colormap", "viridis, magma, inferno, turbo or gray.", "NAME");
  const QCommandLineOption screenshot("screenshot", "Render the window, save it to OUT.png and exit.", "OUT.png");
  const QCommandLineOption compare("compare", "Trace files to compare side by side with their mean attention distance "
                                              "per layer (repeat the option; --screenshot then renders that window).",
                                    "TRACE");
  const QCommandLineOption sr("sr", "Super-resolution weights: open the super-resolution window on the image (--screenshot "
                                    "then renders that window).", "WEIGHTS");
  parser.addOptions({model, weights, method, device, dtype, layer, head, query, colormap, screenshot, sr, compare});
  parser.process(app);
  const bool batch = parser.isSet(screenshot);

  // A screenshot run neither reads nor changes the user's settings.
  QTemporaryDir scratch;
  ViewerSettings settings(batch ? std::make_unique<QSettings>(scratch.filePath("viewer.ini"), QSettings::IniFormat)
                                : std::make_unique<QSettings>());
  MainWindow window(&settings);
  if (parser.isSet(colormap)) {
    try {
      window.view_options()->set_colormap(sparsescope::vision::parse_colormap(parser.value(colormap).toStdString()));
    } catch (const sparsescope::Error& e) {
      return fail(2, QString("--colormap: %1").arg(e.what()));
    }
  }
  if (parser.isSet(model)) {
    try {
      sparsescope::vision::vit_config(parser.value(model).toStdString());
    } catch (const sparsescope::Error& e) {
      return fail(2, QString("--model: %1").arg(e.what()));
    }
  }
  try {
    if (parser.isSet(device)) sparsescope::vision::parse_device(parser.value(device).toStdString());
    if (parser.isSet(dtype)) sparsescope::vision::parse_dtype(parser.value(dtype).toStdString());
  } catch (const sparsescope::Error& e) {
    return fail(2, e.what());
  }
  if (parser.isSet(model) || parser.isSet(weights) || parser.isSet(device) || parser.isSet(dtype)) {
    RunSettings run = window.run_panel()->settings();
    if (parser.isSet(model)) run.model = parser.value(model);
    if (parser.isSet(weights)) run.weights = parser.value(weights);
    if (parser.isSet(method)) {
      if (!ModelRunner::methods().contains(parser.value(method)))
        return fail(2, QString("--method: '%1' is not one of %2").arg(parser.value(method), ModelRunner::methods().join(", ")));
      run.method = parser.value(method);
    } else if (parser.isSet(weights)) {
      run.method = ModelRunner::default_method(run.weights);
    }
    if (parser.isSet(device)) run.device = parser.value(device);
    if (parser.isSet(dtype)) run.dtype = parser.value(dtype);
    window.run_panel()->set_settings(run);
  }
  window.show();

  const QStringList files = parser.positionalArguments();
  if (!files.isEmpty()) {
    QString error;
    window.open_file(files.front());
    if (!window.wait_for_job(&error) && batch) return fail(1, error);
    // A file that opened but cannot be shown (a trace whose maps do not fit its layout) has said why.
    if (batch && !window.last_error().isEmpty()) return fail(1, window.last_error());
    const bool image_or_video = window.document() && window.document()->kind() != Document::Kind::Trace;
    if (image_or_video && (parser.isSet(model) || parser.isSet(weights))) {
      window.run_model(false);
      if (!window.wait_for_job(&error) && batch) return fail(1, error);
    }
  }
  TraceModel* trace = window.trace_model();
  if (window.cross_window() && (parser.isSet(head) || parser.isSet(query))) {  // a cross trace: --query is a word
    bool ok = true;
    const int h = parser.isSet(head) ? parser.value(head).toInt(&ok) : -1;
    const int word = parser.isSet(query) && ok ? parser.value(query).toInt(&ok) : 0;
    const int words = window.cross_window()->words()->count(), heads = window.cross_window()->heads();
    if (!ok || h < -1 || h >= heads || word < 0 || word >= words) {
      return fail(2, QString("--head/--query: a head in [0, %1) and a word in [0, %2) for this cross-attention trace")
                         .arg(heads)
                         .arg(words));
    }
    window.cross_window()->select_head(h);
    window.cross_window()->select_word(word);
  } else if (parser.isSet(layer) || parser.isSet(head) || parser.isSet(query)) {
    try {
      SPARSESCOPE_CHECK(!trace->empty(), "--layer/--head/--query need a trace: open one, or an image with --model");
      Selection s = trace->selection();
      bool ok = true;
      if (parser.isSet(layer)) s.layer = parser.value(layer).toInt(&ok);
      SPARSESCOPE_CHECK(ok, "--layer: '", parser.value(layer).toStdString(), "' is not a number");
      if (parser.isSet(head)) s.head = parser.value(head).toInt(&ok);
      SPARSESCOPE_CHECK(ok, "--head: '", parser.value(head).toStdString(), "' is not a number");
      if (parser.isSet(query)) s.query = parser.value(query).toLongLong(&ok);
      SPARSESCOPE_CHECK(ok, "--query: '", parser.value(query).toStdString(), "' is not a number");
      trace->select(s);
    } catch (const sparsescope::Error& e) {
      if (batch) return fail(2, e.what());
      fail(2, e.what());
    }
  }
  if (parser.isSet(sr)) {
    QString error;
    if (!window.open_super_resolution(parser.value(sr), &error)) {
      if (batch) return fail(1, "--sr: " + error);
      fail(1, "--sr: " + error);
    }
  }
  if (parser.isSet(compare)) {
    QString error;
    if (!window.open_comparison(parser.values(compare), &error)) {
      if (batch) return fail(1, "--compare: " + error);
      fail(1, "--compare: " + error);
    }
  }
  if (!batch) return QApplication::exec();

  QApplication::processEvents();
  const QString out = parser.value(screenshot);
  QString error;
  if (parser.isSet(sr) || parser.isSet(compare) || window.cross_window()) {  // the window of its own is the picture
    QWidget* shown = parser.isSet(sr)        ? static_cast<QWidget*>(window.sr_window())
                     : parser.isSet(compare) ? static_cast<QWidget*>(window.compare_window())
                                             : window.cross_window();
    if (!shown->grab().save(out)) return fail(1, QString("--screenshot: cannot write '%1'").arg(out));
    return 0;
  }
  if (!window.export_png(MainWindow::ExportView::Window, out, &error)) return fail(1, error);
  return 0;
}
