#include "mask_render.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "image_convert.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::viewer {

MaskImages render_mask(const vision::SiteTrace& site, int head, vision::Colormap colormap) {
  SPARSESCOPE_CHECK(head >= 0 && head < site.heads(), site.name, ": head ", head, " out of range [0, ", site.heads(),
                    ")");
  MaskImages out;
  out.pool = site.pool;
  const at::Tensor probs = site.probs[head].to(at::kFloat);  // [n, m]
  if (probs.numel() > 0) {
    // kthvalue selects in linear time; a sort-based quantile costs more than the rest of the redraw.
    const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(0.99 * probs.numel())));
    out.probs_hi = std::get<0>(probs.flatten().kthvalue(k)).item<double>();
  }
  if (!(out.probs_hi > 0)) out.probs_hi = 1.0;
  out.probs = to_qimage(vision::apply_colormap(probs, colormap, 0.0, out.probs_hi));
  if (site.mask.defined() && site.mask.numel() > 0) {
    const at::Tensor plane = site.mask[site.mask.size(0) == 1 ? 0 : head];  // [n, m]
    out.mask = to_qimage(vision::apply_colormap(plane, vision::Colormap::Gray, 0.0, 1.0));
  }
  return out;
}

}  // namespace sparsescope::viewer
