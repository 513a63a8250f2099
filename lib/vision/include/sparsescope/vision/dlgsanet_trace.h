#pragma once
// Recording DLGSANet on an image: what `sparsescope sr --record` writes and the viewer shows.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

#include "sparsescope/vision/dlgsanet.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::vision {

/// Where the recorded square of an LR image lies: its central min(size, side) pixels per side.
struct SrCrop {
  int64_t top = 0, left = 0, height = 0, width = 0;
};
SrCrop central_crop(const Image& image, int64_t size);

/// The maps of every MHDLSA (per-pixel kernels) and SparseGSA (channel attention after the ReLU) of
/// `model` (in its mode, on `device` in `dtype`) over the central_crop of `image`: the trace's image
/// is that crop, its layout the crop's pixel grid, info.method "dlgsanet".
Trace record_dlgsanet(DLGSANet& model, const Image& image, int64_t size, at::Device device, at::ScalarType dtype,
                      const std::string& input, int64_t frame = -1);

/// The k x k kernel that head `head` of a "kernel" site applies at grid pixel `pixel` (row-major
/// in the trace's layout): [k, k] float32. Throws sparsescope::Error for another kind of site, a
/// pooled one or an index out of range.
at::Tensor kernel_at(const SiteTrace& site, int64_t head, int64_t pixel);

}  // namespace sparsescope::vision
