#pragma once
// Runs slow work (decoding a video, loading and running a model) on a thread of its own, one job at
// a time, so that the window stays responsive. The job reports progress and hands results to the
// GUI thread through its Control; cancel() makes the job's next Control call stop it. Widget-free.
#include <QObject>
#include <QString>
#include <QThread>
#include <atomic>
#include <functional>

namespace sparsescope::viewer {

class JobRunner : public QObject {
  Q_OBJECT

 public:
  /// The job's side: progress, cancellation points and results for the GUI thread.
  class Control {
   public:
    explicit Control(JobRunner& runner) : runner_(runner) {}
    /// Reports progress and stops the job (by throwing) when it was cancelled.
    void progress(int done, int total, const QString& what);
    /// A cancellation point without progress.
    void check_cancelled() const;
    /// Runs `result` on the GUI thread, in order with other results and before finished().
    void deliver(std::function<void()> result);

   private:
    JobRunner& runner_;
  };
  using Job = std::function<void(Control&)>;

  explicit JobRunner(QObject* parent = nullptr);
  /// Cancels a running job and waits for it to stop.
  ~JobRunner() override;

  /// Starts `job` named `title` ("Running vit_small_patch16_224"); false when one is running.
  bool start(const QString& title, Job job);
  void cancel();
  bool busy() const { return thread_ != nullptr; }

 Q_SIGNALS:
  void started(const QString& title);
  void progressed(int done, int total, const QString& what);
  /// Exactly one of these ends each job.
  void finished();
  void failed(const QString& message);
  void cancelled();

 private:
  void on_thread_done(int outcome, const QString& message);

  QThread* thread_ = nullptr;
  std::atomic<bool> cancel_{false};
};

}  // namespace sparsescope::viewer
