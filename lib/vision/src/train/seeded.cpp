#include "sparsescope/vision/seeded.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Tensor.h>

#include <mutex>

namespace sparsescope::vision {

void run_seeded(uint64_t seed, const std::function<void()>& fn) {
  at::Generator global = at::detail::getDefaultCPUGenerator();
  at::Tensor saved;
  {
    const std::lock_guard<std::mutex> lock(global.mutex());
    saved = global.get_state();
    global.set_current_seed(seed);
  }
  struct Restore {
    at::Generator& global;
    at::Tensor& saved;
    ~Restore() {
      const std::lock_guard<std::mutex> lock(global.mutex());
      global.set_state(saved);
    }
  } restore{global, saved};
  fn();
}

}  // namespace sparsescope::vision
