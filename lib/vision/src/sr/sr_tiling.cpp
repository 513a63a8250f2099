#include "sparsescope/vision/sr_tiling.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

at::Tensor upscale_tiled(const Upscaler& upscale, const at::Tensor& lr, int64_t scale, int64_t tile, int64_t overlap,
                         at::Device device) {
  SPARSESCOPE_CHECK(lr.dim() == 4 && lr.size(0) == 1 && lr.size(1) == 3, "upscale_tiled: expected an LR image "
                    "[1, 3, h, w], got ", lr.sizes());
  SPARSESCOPE_CHECK(scale >= 1 && overlap >= 0, "upscale_tiled: bad scale ", scale, " or overlap ", overlap);
  const int64_t h = lr.size(2), w = lr.size(3);
  auto run = [&](const at::Tensor& part) {
    const at::Tensor sr = upscale(part.to(device)).to(at::kCPU, at::kFloat);
    SPARSESCOPE_CHECK(sr.dim() == 4 && sr.size(2) == scale * part.size(2) && sr.size(3) == scale * part.size(3),
                      "upscale_tiled: the model turned LR ", part.sizes(), " into ", sr.sizes(), ", not x", scale);
    return sr;
  };
  if (tile <= 0 || (tile >= h && tile >= w)) return run(lr);
  at::Tensor out = at::empty({1, 3, scale * h, scale * w}, at::kFloat);
  for (int64_t top = 0; top < h; top += tile) {
    for (int64_t left = 0; left < w; left += tile) {
      const int64_t rows = std::min(tile, h - top), cols = std::min(tile, w - left);
      const int64_t y0 = std::max<int64_t>(0, top - overlap), x0 = std::max<int64_t>(0, left - overlap);
      const int64_t y1 = std::min(h, top + rows + overlap), x1 = std::min(w, left + cols + overlap);
      const at::Tensor sr = run(lr.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0));
      out.narrow(2, scale * top, scale * rows)
          .narrow(3, scale * left, scale * cols)
          .copy_(sr.narrow(2, scale * (top - y0), scale * rows).narrow(3, scale * (left - x0), scale * cols));
    }
  }
  return out;
}

}  // namespace sparsescope::vision
