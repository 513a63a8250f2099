#include "step_profiler.h"

#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sparsescope::cli {

namespace {

namespace kineto = torch::autograd::profiler;
namespace impl = torch::profiler::impl;

std::set<impl::ActivityType> activities(bool cuda) {
  std::set<impl::ActivityType> a{impl::ActivityType::CPU};
  if (cuda) a.insert(impl::ActivityType::CUDA);
  return a;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Total {
  int64_t count = 0;
  double ms = 0;
};

// The summary: how busy the GPU was, its costliest kernels, and the host's waits on the device.
void summarise(const kineto::ProfilerResult& result, double wall_ms, int64_t steps, bool cuda) {
  std::map<std::string, Total> kernels, runtime;
  double gpu_ms = 0;
  for (const kineto::KinetoEvent& e : result.events()) {
    const double ms = static_cast<double>(e.durationNs()) * 1e-6;
    if (e.deviceType() == c10::DeviceType::CUDA) {
      gpu_ms += ms;
      Total& t = kernels[e.name()];
      ++t.count;
      t.ms += ms;
    } else if (e.name().rfind("cuda", 0) == 0) {  // CUDA runtime calls on the host
      Total& t = runtime[e.name()];
      ++t.count;
      t.ms += ms;
    }
  }
  std::cerr << std::fixed << std::setprecision(2) << "profile: " << steps << " steps in " << wall_ms << " ms ("
            << wall_ms / static_cast<double>(steps) << " ms a step)";
  if (!cuda) {
    std::cerr << "\n";
    return;
  }
  std::cerr << ", GPU busy " << gpu_ms << " ms (" << 100 * gpu_ms / wall_ms << " %)\n";
  const auto top = [](const std::map<std::string, Total>& totals, const char* what) {
    std::vector<std::pair<std::string, Total>> sorted(totals.begin(), totals.end());
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    if (sorted.size() > 10) sorted.resize(10);
    for (const auto& [name, t] : sorted) {
      std::cerr << "profile: " << what << " " << std::setw(9) << t.ms << " ms " << std::setw(6) << t.count << "x  "
                << name.substr(0, 100) << "\n";
    }
  };
  top(kernels, "gpu ");
  top(runtime, "host");
}

}  // namespace

StepProfiler::StepProfiler(std::string path, int64_t steps, bool cuda)
    : path_(std::move(path)), steps_(steps), cuda_(cuda) {
  kineto::prepareProfiler(impl::ProfilerConfig(impl::ProfilerState::KINETO), activities(cuda_));
}

StepProfiler::~StepProfiler() {
  if (active_) kineto::disableProfiler();  // the run stopped inside the window: nothing is saved
}

void StepProfiler::epoch_start(int64_t steps_in_epoch) {
  ++epochs_seen_;
  step_ = 0;
  // The window: the last steps of the first epoch (the whole epoch when it is that short).
  first_ = std::max<int64_t>(steps_in_epoch - steps_, 0);
  steps_in_epoch_ = steps_in_epoch;
  if (epochs_seen_ == 1 && first_ == 0) start();
}

void StepProfiler::step_done() {
  ++step_;
  if (epochs_seen_ != 1) return;
  if (!active_ && step_ == first_) start();
  if (active_ && step_ == steps_in_epoch_) finish();
}

void StepProfiler::start() {
  if (cuda_) torch::cuda::synchronize();
  kineto::enableProfiler(impl::ProfilerConfig(impl::ProfilerState::KINETO), activities(cuda_));
  active_ = true;
  start_ns_ = now_ns();
}

void StepProfiler::finish() {
  if (cuda_) torch::cuda::synchronize();
  const double wall_ms = static_cast<double>(now_ns() - start_ns_) * 1e-6;
  std::unique_ptr<kineto::ProfilerResult> result = kineto::disableProfiler();
  active_ = false;
  summarise(*result, wall_ms, steps_in_epoch_ - first_, cuda_);
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  result->save(path_);
  std::cerr << "profile: trace in " << path_ << "\n";
}

}  // namespace sparsescope::cli
