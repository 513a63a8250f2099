#pragma once
// The viewer's window: wires the document (image, video or trace), the TraceModel, the job thread
// and the views (overlay in the centre; head grid, mask, stats, model and timeline docks). It holds
// no rendering or model logic of its own.
#include <QMainWindow>
#include <QString>
#include <memory>

namespace sparsescope::vision {
struct Trace;
}

class QDockWidget;
class QLabel;
class QMenu;
class QProgressBar;
class QPushButton;

namespace sparsescope::viewer {

class CompareWindow;
class CrossWindow;
class Document;
class HeadGridView;
class JobRunner;
class MaskPanel;
class ModelRunner;
class OverlayPanel;
class RunPanel;
class SrWindow;
class StatsPanel;
class TimelineView;
class TraceModel;
class ViewerSettings;
class ViewOptions;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  /// `settings` must outlive the window.
  explicit MainWindow(ViewerSettings* settings, QWidget* parent = nullptr);
  ~MainWindow() override;

  /// Opens an image, video or trace on the job thread; a failure is shown as a message.
  void open_file(const QString& path);
  /// Records the current image or frame (or every frame of a video) with the Model panel's settings.
  void run_model(bool all_frames);
  /// Waits until the running job (if any) has finished and its results are shown; false, with the
  /// job's message in `error`, when it failed or was cancelled.
  bool wait_for_job(QString* error);
  /// Shows frame `frame` of a video (its trace when recorded, else the frame itself).
  void show_frame(int frame);
  /// Opens the super-resolution window on the shown image or frame with SR `weights` (sr_model.h);
  /// false with the reason in `error` (no image open, unreadable weights).
  bool open_super_resolution(const QString& weights, QString* error);
  SrWindow* sr_window() const { return sr_; }
  /// The window of traces with a cross layout (words and regions), made when one is opened.
  CrossWindow* cross_window() const { return cross_; }
  /// Opens the comparison window on trace files (e.g. the MAE and MAE-LUT encoders on one image);
  /// false with the reason in `error`.
  bool open_comparison(const QStringList& paths, QString* error);
  CompareWindow* compare_window() const { return compare_; }

  enum class ExportView { Overlay, HeadGrid, Mask, Window };
  /// Writes the view as PNG; false with a message naming the file and cause in `error`.
  bool export_png(ExportView view, const QString& path, QString* error);
  bool export_stats_csv(const QString& path, QString* error);

  const QString& last_error() const { return last_error_; }
  TraceModel* trace_model() const { return model_; }
  ViewOptions* view_options() const { return options_; }
  const Document* document() const { return document_.get(); }
  OverlayPanel* overlay_panel() const { return overlay_; }
  HeadGridView* head_grid() const { return grid_; }
  MaskPanel* mask_panel() const { return mask_; }
  StatsPanel* stats_panel() const { return stats_; }
  RunPanel* run_panel() const { return run_; }
  TimelineView* timeline() const { return timeline_; }

 protected:
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;
  void closeEvent(QCloseEvent* event) override;

 private:
  void build_menus();
  void set_document(std::shared_ptr<Document> document);
  void show_error(const QString& message);
  void show_cross_trace(std::shared_ptr<const vision::Trace> trace);
  void update_state();
  void update_timeline_status();
  void choose_and_open();
  void choose_and_export(ExportView view);
  void choose_and_export_csv();
  void step_head(int delta);
  void step_layer(int delta);

  ViewerSettings* settings_;
  // Declared in this order so that the job thread stops before the model it may be using goes.
  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<JobRunner> jobs_;
  std::shared_ptr<Document> document_;
  int current_frame_ = 0;
  SrWindow* sr_ = nullptr;        // made on first use, a window of its own
  CrossWindow* cross_ = nullptr;  // likewise
  CompareWindow* compare_ = nullptr;
  QString last_error_;
  QString job_error_;

  TraceModel* model_;
  ViewOptions* options_;
  OverlayPanel* overlay_;
  HeadGridView* grid_;
  MaskPanel* mask_;
  StatsPanel* stats_;
  RunPanel* run_;
  TimelineView* timeline_;
  QDockWidget* timeline_dock_ = nullptr;
  QMenu* recent_ = nullptr;
  QLabel* status_;
  QProgressBar* progress_;
  QPushButton* cancel_;
};

}  // namespace sparsescope::viewer
