#include "job_runner.h"

#include <c10/util/Exception.h>

#include <QMetaObject>
#include <exception>

namespace sparsescope::viewer {

namespace {

// Thrown at a cancellation point; caught by the thread's body only.
struct Cancelled {};

enum Outcome { kFinished, kFailed, kCancelled };

}  // namespace

void JobRunner::Control::progress(int done, int total, const QString& what) {
  check_cancelled();
  QMetaObject::invokeMethod(
      &runner_, [r = &runner_, done, total, what] { Q_EMIT r->progressed(done, total, what); }, Qt::QueuedConnection);
}

void JobRunner::Control::check_cancelled() const {
  if (runner_.cancel_.load()) throw Cancelled{};
}

void JobRunner::Control::deliver(std::function<void()> result) {
  QMetaObject::invokeMethod(&runner_, std::move(result), Qt::QueuedConnection);
}

JobRunner::JobRunner(QObject* parent) : QObject(parent) {}

JobRunner::~JobRunner() {
  if (!thread_) return;
  cancel_ = true;
  thread_->wait();
  delete thread_;
}

bool JobRunner::start(const QString& title, Job job) {
  if (busy()) return false;
  cancel_ = false;
  thread_ = QThread::create([this, job = std::move(job)] {
    Control control(*this);
    int outcome = kFinished;
    QString message;
    try {
      job(control);
    } catch (const Cancelled&) {
      outcome = kCancelled;
    } catch (const c10::Error& e) {  // LibTorch's, whose what() carries a C++ backtrace
      outcome = kFailed;
      message = QString::fromStdString(e.what_without_backtrace());
    } catch (const std::exception& e) {
      outcome = kFailed;
      message = QString::fromStdString(e.what());
    }
    // Queued after every result the job delivered, so those arrive first.
    QMetaObject::invokeMethod(
        this, [this, outcome, message] { on_thread_done(outcome, message); }, Qt::QueuedConnection);
  });
  thread_->start();
  Q_EMIT started(title);
  return true;
}

void JobRunner::cancel() { cancel_ = true; }

void JobRunner::on_thread_done(int outcome, const QString& message) {
  thread_->wait();
  delete thread_;
  thread_ = nullptr;
  if (outcome == kFinished) Q_EMIT finished();
  if (outcome == kFailed) Q_EMIT failed(message);
  if (outcome == kCancelled) Q_EMIT cancelled();
}

}  // namespace sparsescope::viewer
