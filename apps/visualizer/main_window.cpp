#include "main_window.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <QAction>
#include <QCloseEvent>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QEventLoop>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QStatusBar>

#include "compare_window.h"
#include "cross_window.h"
#include "document.h"
#include "head_grid_view.h"
#include "image_convert.h"
#include "job_runner.h"
#include "mask_panel.h"
#include "model_runner.h"
#include "overlay_panel.h"
#include "overlay_view.h"
#include "run_panel.h"
#include "sr_window.h"
#include "sparsescope/kernels/error.h"
#include "stats_csv.h"
#include "stats_panel.h"
#include "timeline_view.h"
#include "trace_model.h"
#include "view_options.h"
#include "viewer_settings.h"

namespace sparsescope::viewer {

namespace {

QDockWidget* dock(QMainWindow* window, const QString& title, const QString& name, QWidget* content) {
  auto* d = new QDockWidget(title, window);
  d->setObjectName(name);
  d->setWidget(content);
  return d;
}

}  // namespace

MainWindow::MainWindow(ViewerSettings* settings, QWidget* parent)
    : QMainWindow(parent),
      settings_(settings),
      runner_(std::make_unique<ModelRunner>()),
      jobs_(std::make_unique<JobRunner>()),
      model_(new TraceModel(this)),
      options_(new ViewOptions(this)),
      overlay_(new OverlayPanel(model_, options_, this)),
      grid_(new HeadGridView(model_, options_, this)),
      mask_(new MaskPanel(model_, options_, this)),
      stats_(new StatsPanel(model_, this)),
      run_(new RunPanel(this)),
      timeline_(new TimelineView(this)),
      status_(new QLabel(this)),
      progress_(new QProgressBar(this)),
      cancel_(new QPushButton("Cancel", this)) {
  // The views' tensor work (one row per layer, maps of a few hundred values) is too small to gain
  // from LibTorch's intra-op threads, and their start-up and spinning cost more than the work on a
  // busy machine. OpenMP keeps this setting per thread: model runs set their own (ModelRunner).
  at::set_num_threads(1);
  setWindowTitle("sparsescope viewer");
  setAcceptDrops(true);
  setDockOptions(AnimatedDocks | AllowTabbedDocks | AllowNestedDocks);
  setCentralWidget(overlay_);
  addDockWidget(Qt::RightDockWidgetArea, dock(this, "Heads", "heads", grid_));
  addDockWidget(Qt::LeftDockWidgetArea, dock(this, "Model", "model", run_));
  auto* mask_dock = dock(this, "Mask", "mask", mask_);
  auto* stats_dock = dock(this, "Stats", "stats", stats_);
  addDockWidget(Qt::BottomDockWidgetArea, mask_dock);
  addDockWidget(Qt::BottomDockWidgetArea, stats_dock);
  splitDockWidget(mask_dock, stats_dock, Qt::Horizontal);
  timeline_dock_ = dock(this, "Timeline", "timeline", timeline_);
  addDockWidget(Qt::BottomDockWidgetArea, timeline_dock_);
  timeline_dock_->hide();

  statusBar()->addWidget(status_, 1);
  statusBar()->addPermanentWidget(progress_);
  statusBar()->addPermanentWidget(cancel_);
  progress_->setMaximumWidth(240);
  progress_->hide();
  cancel_->hide();
  status_->setText("No file open");

  const auto colormap = settings_->colormap().toStdString();
  try {
    options_->set_colormap(vision::parse_colormap(colormap));
  } catch (const sparsescope::Error&) {
    // An unknown name in the settings file: keep the default colormap.
  }
  options_->set_opacity(settings_->opacity());
  run_->set_settings(settings_->run_settings());
  build_menus();

  connect(options_, &ViewOptions::changed, this, [this] {
    settings_->set_colormap(vision::to_string(options_->colormap()));
    settings_->set_opacity(options_->opacity());
  });
  connect(run_, &RunPanel::settings_changed, this, [this] { settings_->set_run_settings(run_->settings()); });
  connect(run_, &RunPanel::run_requested, this, &MainWindow::run_model);
  connect(run_, &RunPanel::cancel_requested, jobs_.get(), &JobRunner::cancel);
  connect(cancel_, &QPushButton::clicked, jobs_.get(), &JobRunner::cancel);
  connect(timeline_, &TimelineView::frame_selected, this, &MainWindow::show_frame);

  connect(jobs_.get(), &JobRunner::started, this, [this](const QString& title) {
    job_error_.clear();
    status_->setText(title);
    progress_->setRange(0, 0);
    progress_->show();
    cancel_->show();
    update_state();
  });
  connect(jobs_.get(), &JobRunner::progressed, this, [this](int done, int total, const QString& what) {
    progress_->setRange(0, total);
    progress_->setValue(done);
    progress_->setFormat(QString("%1 %p%").arg(what));
  });
  auto job_over = [this] {
    progress_->hide();
    cancel_->hide();
    update_state();
  };
  connect(jobs_.get(), &JobRunner::finished, this, [this, job_over] {
    job_over();
    status_->setText("Ready");
  });
  connect(jobs_.get(), &JobRunner::cancelled, this, [this, job_over] {
    job_over();
    job_error_ = "cancelled";
    status_->setText("Cancelled");
  });
  connect(jobs_.get(), &JobRunner::failed, this, [this, job_over](const QString& message) {
    job_over();
    job_error_ = message;
    show_error(message);
  });
  update_state();
  resize(1400, 900);
}

MainWindow::~MainWindow() = default;

void MainWindow::build_menus() {
  auto* file = menuBar()->addMenu("&File");
  file->addAction("&Open...", QKeySequence::Open, this, &MainWindow::choose_and_open);
  recent_ = file->addMenu("Open &Recent");
  connect(recent_, &QMenu::aboutToShow, this, [this] {
    recent_->clear();
    for (const QString& path : settings_->recent_files())
      recent_->addAction(path, this, [this, path] { open_file(path); });
    if (recent_->isEmpty()) recent_->addAction("(none)")->setEnabled(false);
  });
  file->addAction("&Compare traces...", this, [this] {
    const QStringList paths = QFileDialog::getOpenFileNames(this, "Traces to compare", QString(),
                                                            "Traces (*.safetensors);;All files (*)");
    QString error;
    if (!paths.isEmpty() && !open_comparison(paths, &error)) show_error(error);
  });
  file->addSeparator();
  auto* export_menu = file->addMenu("&Export");
  export_menu->addAction("Overlay as PNG...", this, [this] { choose_and_export(ExportView::Overlay); });
  export_menu->addAction("Head grid as PNG...", this, [this] { choose_and_export(ExportView::HeadGrid); });
  export_menu->addAction("Mask view as PNG...", this, [this] { choose_and_export(ExportView::Mask); });
  export_menu->addAction("Window as PNG...", QKeySequence("Ctrl+Shift+S"), this,
                         [this] { choose_and_export(ExportView::Window); });
  export_menu->addAction("Stats as CSV...", this, &MainWindow::choose_and_export_csv);
  file->addSeparator();
  file->addAction("&Quit", QKeySequence::Quit, this, &QWidget::close);

  auto* view = menuBar()->addMenu("&View");
  view->addAction("Next head", QKeySequence("]"), this, [this] { step_head(1); });
  view->addAction("Previous head", QKeySequence("["), this, [this] { step_head(-1); });
  view->addAction("Next layer", QKeySequence("Shift+]"), this, [this] { step_layer(1); });
  view->addAction("Previous layer", QKeySequence("Shift+["), this, [this] { step_layer(-1); });
  view->addAction("Query the class token", QKeySequence("C"), this, [this] {
    if (!model_->empty()) model_->select_query(0);
  });
  view->addSeparator();
  for (auto* d : findChildren<QDockWidget*>()) view->addAction(d->toggleViewAction());

  auto* run = menuBar()->addMenu("&Run");
  run->addAction("Run on this image or frame", QKeySequence("Ctrl+R"), this, [this] { run_model(false); });
  run->addAction("Run on every frame", this, [this] { run_model(true); });
  run->addAction("Cancel", QKeySequence("Esc"), jobs_.get(), &JobRunner::cancel);
  run->addSeparator();
  run->addAction("Super-resolution of this image or frame...", this, [this] {
    const QString weights = QFileDialog::getOpenFileName(this, "Super-resolution weights", QString(),
                                                         "Weights (*.safetensors *.pth);;All files (*)");
    QString error;
    if (!weights.isEmpty() && !open_super_resolution(weights, &error)) show_error(error);
  });
}

bool MainWindow::open_super_resolution(const QString& weights, QString* error) {
  if (!document_ || document_->frame_count() == 0 || document_->frame(current_frame_).image.pixels.empty()) {
    if (error) *error = "super-resolution: open an image or a video first";
    return false;
  }
  if (!sr_) {
    sr_ = new SrWindow(this);
    sr_->setWindowFlag(Qt::Window);
  }
  if (!sr_->show_image(document_->frame(current_frame_).image, weights, error)) return false;
  sr_->show();
  sr_->raise();
  return true;
}

void MainWindow::show_error(const QString& message) {
  last_error_ = message;
  status_->setText(message);
  // Not modal-blocking: the window keeps running (and batch runs never wait on a dialog).
  auto* box = new QMessageBox(QMessageBox::Warning, "sparsescope viewer", message, QMessageBox::Ok, this);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();
}

void MainWindow::open_file(const QString& path) {
  const bool started = jobs_->start(QString("Opening %1").arg(QFileInfo(path).fileName()), [this, path](
                                                                                                JobRunner::Control& c) {
    auto doc = std::make_shared<Document>(Document::open(path, [&c](int64_t done, int64_t total) {
      c.progress(static_cast<int>(done), static_cast<int>(total), "decoding");
    }));
    c.deliver([this, doc] { set_document(doc); });
  });
  if (!started) show_error(QString("cannot open '%1' now: wait for the running job or cancel it").arg(path));
}

void MainWindow::set_document(std::shared_ptr<Document> document) {
  document_ = std::move(document);
  settings_->add_recent_file(document_->path());
  setWindowTitle(QString("%1 - sparsescope viewer").arg(QFileInfo(document_->path()).fileName()));
  const bool video = document_->kind() == Document::Kind::Video;
  timeline_->set_frames(document_->frame_count(), document_->fps());
  timeline_dock_->setVisible(video);
  model_->clear();
  current_frame_ = -1;
  show_frame(0);
  update_state();
}

void MainWindow::show_frame(int frame) {
  if (!document_ || frame < 0 || frame >= document_->frame_count()) return;
  current_frame_ = frame;
  timeline_->set_current(frame);
  const Frame& f = document_->frame(frame);
  // The picture first: the overlay redraws once, when the model below changes.
  overlay_->set_frame_image(f.image.pixels.empty() ? QImage() : to_qimage(f.image));
  if (auto trace = document_->trace(frame); trace && trace->info.layout.kind == vision::kCrossLayout) {
    model_->clear();
    show_cross_trace(std::move(trace));
  } else if (trace) {
    try {
      model_->set_trace(std::move(trace));
    } catch (const sparsescope::Error& e) {
      model_->clear();
      show_error(QString::fromStdString(e.what()));
    } catch (const c10::Error& e) {  // e.g. out of memory for the maps of a huge trace
      model_->clear();
      show_error(QString::fromStdString(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      model_->clear();
      show_error(QString::fromStdString(std::string("cannot show the trace: ") + e.what()));
    }
  } else {
    model_->clear();
  }
  update_timeline_status();
}

bool MainWindow::open_comparison(const QStringList& paths, QString* error) {
  if (!compare_) {
    compare_ = new CompareWindow(this);
    compare_->setWindowFlag(Qt::Window);
  }
  if (!compare_->open(paths, error)) return false;
  compare_->show();
  compare_->raise();
  return true;
}

void MainWindow::show_cross_trace(std::shared_ptr<const vision::Trace> trace) {
  if (!cross_) {
    cross_ = new CrossWindow(this);
    cross_->setWindowFlag(Qt::Window);
    connect(options_, &ViewOptions::changed, cross_, [this] { cross_->set_colormap(options_->colormap()); });
  }
  try {
    cross_->set_colormap(options_->colormap());
    cross_->set_trace(std::move(trace));
  } catch (const sparsescope::Error& e) {
    show_error(QString::fromStdString(e.what()));
    return;
  }
  cross_->show();
  cross_->raise();
  status_->setText("Cross-attention between words and regions: shown in its own window");
}

void MainWindow::run_model(bool all_frames) {
  if (!document_ || document_->kind() == Document::Kind::Trace) {
    show_error(document_ ? "this trace is already recorded; open its input image to record it again"
                         : "open an image or a video first");
    return;
  }
  const RunSettings settings = run_->settings();
  settings_->set_run_settings(settings);
  std::vector<int> frames;
  if (all_frames) {
    for (int i = 0; i < document_->frame_count(); ++i)
      if (!document_->trace(i)) frames.push_back(i);
  } else {
    frames.push_back(current_frame_);
  }
  std::shared_ptr<const Document> doc = document_;
  ModelRunner* runner = runner_.get();
  const bool started = jobs_->start(
      QString("Running %1 on %2")
          .arg(settings.model.isEmpty() ? QFileInfo(settings.weights).fileName() : settings.model,
               QFileInfo(doc->path()).fileName()),
      [this, doc, frames, settings, runner](JobRunner::Control& c) {
        const int total_frames = static_cast<int>(frames.size());
        for (int k = 0; k < total_frames; ++k) {
          const int i = frames[k];
          const Frame& frame = doc->frame(i);
          auto trace = std::make_shared<const vision::Trace>(runner->record(
              settings, frame.image, doc->path().toStdString(), frame.index, [&c, k, total_frames](int done, int total) {
                c.progress(k * total + done, total_frames * total, total_frames > 1 ? "frames" : "layers");
              }));
          c.deliver([this, doc, i, trace] {
            if (document_ != doc) return;  // another file was opened meanwhile
            document_->set_trace(i, trace);
            if (i == current_frame_) show_frame(i);
            update_timeline_status();
          });
        }
      });
  if (!started) show_error("a job is running: wait for it or cancel it");
}

bool MainWindow::wait_for_job(QString* error) {
  if (jobs_->busy()) {
    // The window keeps handling events; the job's end arrives as a queued signal, after the
    // handlers connected in the constructor have updated the window.
    QEventLoop loop;
    connect(jobs_.get(), &JobRunner::finished, &loop, &QEventLoop::quit);
    connect(jobs_.get(), &JobRunner::failed, &loop, &QEventLoop::quit);
    connect(jobs_.get(), &JobRunner::cancelled, &loop, &QEventLoop::quit);
    loop.exec();
  }
  if (!job_error_.isEmpty() && error) *error = job_error_;
  return job_error_.isEmpty();
}

void MainWindow::update_state() {
  const bool can_run = document_ && document_->kind() != Document::Kind::Trace;
  run_->set_state(can_run, document_ && document_->kind() == Document::Kind::Video, jobs_->busy());
}

void MainWindow::update_timeline_status() {
  if (!document_ || document_->kind() != Document::Kind::Video) return;
  timeline_->set_status(QString("frame %1 / %2 (stream frame %3), %4 traced")
                            .arg(current_frame_ + 1)
                            .arg(document_->frame_count())
                            .arg(document_->frame(current_frame_).index)
                            .arg(document_->traced_frames()));
}

bool MainWindow::export_png(ExportView view, const QString& path, QString* error) {
  QImage image;
  switch (view) {
    case ExportView::Overlay:
      image = overlay_->view()->picture();
      break;
    case ExportView::HeadGrid:
      image = grid_->picture();
      break;
    case ExportView::Mask:
      image = mask_->grab().toImage();
      break;
    case ExportView::Window:
      image = grab().toImage();
      break;
  }
  if (image.isNull()) {
    *error = QString("cannot write '%1': the view is empty (open a trace or run a model first)").arg(path);
    return false;
  }
  if (!image.save(path, "PNG")) {
    *error = QString("cannot write '%1': the file could not be saved (check the folder and permissions)").arg(path);
    return false;
  }
  return true;
}

bool MainWindow::export_stats_csv(const QString& path, QString* error) {
  if (model_->empty()) {
    *error = QString("cannot write '%1': no trace is shown").arg(path);
    return false;
  }
  try {
    write_stats_csv(model_->trace(), path.toStdString());
  } catch (const sparsescope::Error& e) {
    *error = QString::fromStdString(e.what());
    return false;
  }
  return true;
}

void MainWindow::choose_and_open() {
  const QString path = QFileDialog::getOpenFileName(this, "Open", QString(), Document::file_filter());
  if (!path.isEmpty()) open_file(path);
}

void MainWindow::choose_and_export(ExportView view) {
  const QString path = QFileDialog::getSaveFileName(this, "Export PNG", QString(), "PNG images (*.png)");
  if (path.isEmpty()) return;
  QString error;
  if (!export_png(view, path, &error)) show_error(error);
}

void MainWindow::choose_and_export_csv() {
  const QString path = QFileDialog::getSaveFileName(this, "Export stats", QString(), "CSV files (*.csv)");
  if (path.isEmpty()) return;
  QString error;
  if (!export_stats_csv(path, &error)) show_error(error);
}

void MainWindow::step_head(int delta) {
  if (model_->empty()) return;
  const int heads = model_->heads(model_->selection().layer);
  model_->select_head((model_->selection().head + delta + heads) % heads);
}

void MainWindow::step_layer(int delta) {
  if (model_->empty()) return;
  const int layers = model_->layers();
  model_->select_layer((model_->selection().layer + delta + layers) % layers);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  if (event->mimeData()->hasUrls() && event->mimeData()->urls().front().isLocalFile()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
  const auto urls = event->mimeData()->urls();
  if (urls.isEmpty() || !urls.front().isLocalFile()) return;
  open_file(urls.front().toLocalFile());
  event->acceptProposedAction();
}

void MainWindow::closeEvent(QCloseEvent* event) {
  jobs_->cancel();
  QMainWindow::closeEvent(event);
}

}  // namespace sparsescope::viewer
