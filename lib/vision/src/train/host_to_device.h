#pragma once
#include <ATen/ATen.h>

namespace sparsescope::vision::detail {

/// A small CPU tensor on `device`, copied without making the host wait for the device's queue:
/// a plain copy from pageable memory synchronises the stream, which would serialise the host's
/// op dispatch with the device's work at every training step. On CUDA the copy goes through
/// pinned memory, non-blocking (the caching host allocator keeps the buffer until it is done).
inline at::Tensor to_device_async(const at::Tensor& cpu, const at::Device& device) {
  if (!device.is_cuda() || !cpu.is_cpu()) return cpu.to(device);  // nothing to pin
  return cpu.pin_memory().to(at::TensorOptions().device(device), /*non_blocking=*/true);
}

}  // namespace sparsescope::vision::detail
