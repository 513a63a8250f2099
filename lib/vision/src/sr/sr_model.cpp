#include "sparsescope/vision/sr_model.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/sr_eval.h"
#include "sparsescope/vision/sr_tiling.h"
#include "sparsescope/vision/trace_metadata.h"

namespace sparsescope::vision {

std::unique_ptr<SrModel> load_sr_model(const std::string& weights, const std::string& config) {
  const std::vector<SrModelFamily> all = sr_model_families();
  std::string known;
  for (const auto& f : all) {
    const std::vector<std::string> names = f.configs();
    if (!config.empty() && std::find(names.begin(), names.end(), config) != names.end()) return f.load(weights, config);
    if (config.empty() && f.owns(weights)) return f.load(weights, "");
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  }
  SPARSESCOPE_CHECK(!config.empty(), "'", weights, "' carries no super-resolution model card: name its configuration (--model: ",
                    known, ")");
  SPARSESCOPE_FAIL("--model: unknown super-resolution configuration '", config, "' (known: ", known, ")");
}

at::Tensor upscale_image(SrModel& model, const Image& image, int64_t tile, int64_t overlap) {
  const int64_t s = model.scale();
  const std::size_t pixels = static_cast<std::size_t>(image.width) * image.height * s * s;
  SPARSESCOPE_CHECK(pixels <= kMaxImagePixels, "the x", s, " image would have ", pixels, " pixels, more than the ",
                    kMaxImagePixels, " an image may hold");
  const at::NoGradGuard no_grad;
  const at::Tensor lr = image_to_tensor(image).permute({2, 0, 1}).unsqueeze(0).to(at::kFloat).div(255);
  // The model moves each tile to its own device.
  return sr_to_8bit(upscale_tiled([&model](const at::Tensor& part) { return model.upscale(part); }, lr, s, tile, overlap,
                                  at::kCPU));
}

SrCrop central_crop(const Image& image, int64_t size) {
  SrCrop c;
  c.height = std::min<int64_t>(size, image.height);
  c.width = std::min<int64_t>(size, image.width);
  c.top = (image.height - c.height) / 2;
  c.left = (image.width - c.width) / 2;
  return c;
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
