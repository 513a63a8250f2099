#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/dlgsanet_trace.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/trace_metadata.h"

namespace sparsescope::vision {

SrCrop central_crop(const Image& image, int64_t size) {
  SrCrop c;
  c.height = std::min<int64_t>(size, image.height);
  c.width = std::min<int64_t>(size, image.width);
  c.top = (image.height - c.height) / 2;
  c.left = (image.width - c.width) / 2;
  return c;
}

Trace record_dlgsanet(DLGSANet& model, const Image& image, int64_t size, at::Device device, at::ScalarType dtype,
                      const std::string& input, int64_t frame) {
  SPARSESCOPE_CHECK(size >= 1, "record_dlgsanet: the recorded square must be at least 1 pixel, got ", size);
  const at::NoGradGuard no_grad;
  const SrCrop c = central_crop(image, size);
  const at::Tensor crop = image_to_tensor(image).narrow(0, c.top, c.height).narrow(1, c.left, c.width).contiguous();
  Recorder recorder;
  model->forward(crop.permute({2, 0, 1}).unsqueeze(0).to(device, dtype).div(255), &recorder);
  Trace trace = recorder.take().at(0);
  trace.image = crop;
  trace.info.model = model->config().name;
  trace.info.method = "dlgsanet";
  trace.info.input = input;
  trace.info.frame = frame;
  trace.info.layout.grid = {1, c.height, c.width};
  return trace;
}

at::Tensor kernel_at(const SiteTrace& site, int64_t head, int64_t pixel) {
  SPARSESCOPE_CHECK(site.kind == kKernelMap, "site '", site.name, "' holds ", site.kind, " maps, not kernels");
  SPARSESCOPE_CHECK(site.pool == 1, "site '", site.name, "' was pooled (", site.pool, " x ", site.pool,
                    "); record a smaller square to see single kernels");
  SPARSESCOPE_CHECK(head >= 0 && head < site.heads() && pixel >= 0 && pixel < site.queries, "site '", site.name,
                    "': head ", head, " or pixel ", pixel, " out of range (", site.heads(), " heads, ", site.queries,
                    " pixels)");
  const auto k = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(site.keys))));
  SPARSESCOPE_CHECK(k * k == site.keys, "site '", site.name, "': ", site.keys, " taps are no square kernel");
  return site.probs[head][pixel].to(at::kFloat).view({k, k});
}

}  // namespace sparsescope::vision
