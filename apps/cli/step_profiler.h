#pragma once
// `sparsescope train --profile-steps N`: the PyTorch profiler (Kineto) over the last N training steps
// of the first epoch, saved as a Chrome trace (chrome://tracing, Perfetto) with a summary on stderr.
#include <cstdint>
#include <string>

namespace sparsescope::cli {

class StepProfiler {
 public:
  /// Profiles CPU ops and, when `cuda`, the GPU's kernels and copies, into `path`.
  StepProfiler(std::string path, int64_t steps, bool cuda);
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;
  ~StepProfiler();

  void epoch_start(int64_t steps_in_epoch);  ///< TrainCallbacks::on_epoch_start
  void step_done();                          ///< TrainCallbacks::on_step

 private:
  void start();
  void finish();

  std::string path_;
  int64_t steps_;
  bool cuda_;
  int64_t epochs_seen_ = 0;
  int64_t steps_in_epoch_ = 0;
  int64_t first_ = 0;  ///< steps of the first epoch before the window
  int64_t step_ = 0;
  bool active_ = false;
  int64_t start_ns_ = 0;
};

}  // namespace sparsescope::cli
