#pragma once
// Super-resolution models as applications meet them, without naming a method: a family registers
// how it loads weights (its model card, or a named configuration) into an SrModel that upscales and
// records; `sparsescope sr`, `eval --task sr` and the viewer go through load_sr_model().
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sparsescope/vision/image.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::vision {

class SrModel {
 public:
  virtual ~SrModel() = default;
  virtual std::string name() const = 0;  ///< its configuration
  virtual int64_t scale() const = 0;
  /// Moves the model (eval mode) to `device` in `dtype`.
  virtual void to(at::Device device, at::ScalarType dtype) = 0;
  /// LR float [B, 3, h, w] in [0, 1] (any device) -> SR float32 [B, 3, scale h, scale w], unclamped.
  virtual at::Tensor upscale(const at::Tensor& lr) = 0;
  /// The recording of the model's maps over central_crop(image, size): the trace's image is that
  /// crop and its layout the crop's pixel grid.
  virtual Trace record(const Image& image, int64_t size, const std::string& input, int64_t frame = -1) = 0;
};

struct SrModelFamily {
  std::string name;
  std::function<std::vector<std::string>()> configs;  ///< the named configurations
  /// Whether `weights` carries this family's model card.
  std::function<bool(const std::string& weights)> owns;
  /// The model of `weights` (CPU, float32, eval); `config` empty: from its card.
  std::function<std::unique_ptr<SrModel>(const std::string& weights, const std::string& config)> load;
};

/// Adds `family` (registry.h's rules: unique names, methods register from their folders).
void register_sr_model_family(SrModelFamily family);
std::vector<SrModelFamily> sr_model_families();

/// The SR model of `weights`: of the family that lists `config`, or with `config` empty of the
/// family whose card the file carries. Throws sparsescope::Error naming the file, or listing the
/// configurations when a file without a card needs one.
std::unique_ptr<SrModel> load_sr_model(const std::string& weights, const std::string& config = "");

/// `image` upscaled by `model` in tiles of `tile` LR pixels with `overlap` of context (sr_tiling.h;
/// `tile` 0: one pass), saved as 8 bits: uint8 [3, scale H, scale W] on the CPU. Throws
/// sparsescope::Error when the result would exceed kMaxImagePixels.
at::Tensor upscale_image(SrModel& model, const Image& image, int64_t tile, int64_t overlap);

/// Where a recorded square of an LR image lies: its central min(size, side) pixels per side.
struct SrCrop {
  int64_t top = 0, left = 0, height = 0, width = 0;
};
SrCrop central_crop(const Image& image, int64_t size);

/// The k x k kernel that head `head` of a "kernel" site applies at grid pixel `pixel` (row-major
/// in the trace's layout): [k, k] float32. Throws sparsescope::Error for another kind of site, a
/// pooled one or an index out of range.
at::Tensor kernel_at(const SiteTrace& site, int64_t head, int64_t pixel);

}  // namespace sparsescope::vision
