#pragma once
// Super-resolution side by side, widget-free: the weights of a registered SR model (sr_model.h) run
// on an image (tiled as `sparsescope sr` does) with its bicubic upscaling, their difference and the
// recording of the central square (per-pixel kernels, channel attention), and the pictures the SR
// window draws.
#include <ATen/core/Tensor.h>

#include <QImage>
#include <memory>
#include <optional>
#include <string>

#include "sparsescope/vision/image.h"
#include "sparsescope/vision/sr_model.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::viewer {

struct SrComparison {
  int64_t scale = 1;
  QImage lr;          ///< the LR image, each pixel repeated scale x scale (as large as the others)
  QImage bicubic;     ///< MATLAB's bicubic upscaling
  QImage sr;          ///< the model's output, 8-bit as saved
  QImage difference;  ///< |SR - bicubic| (mean over RGB), magma from 0 to max_difference
  double max_difference = 0;  ///< in 8-bit levels
  vision::Trace trace;  ///< SrModel::record of the central square
  vision::SrCrop crop;  ///< where that square lies in the LR image
};

class SrRunner {
 public:
  /// Loads SR weights (ours with their card; a method's own checkpoint with `model` naming the
  /// configuration). Throws sparsescope::Error naming the file.
  void load(const std::string& weights, const std::string& model = "");
  bool loaded() const { return model_ != nullptr; }
  const std::string& weights() const { return weights_; }

  /// Compares on `image` with tiles of `tile` LR pixels (0: one pass) and records the central
  /// `record_size` square. Throws sparsescope::Error when nothing is loaded or the output would be
  /// too large.
  SrComparison run(const vision::Image& image, int64_t tile = 256, int64_t record_size = 64);

 private:
  std::unique_ptr<vision::SrModel> model_;
  std::string weights_;
};

/// The LR pixel of the recorded square under SR picture cell (column, row), row-major in the
/// trace's layout; nullopt outside the square.
std::optional<int64_t> recorded_pixel(const SrComparison& c, int column, int row);

/// What the map pane draws for head `head` of site `site`: a channel site's C x C weights (viridis
/// from 0 to their maximum), or a kernel site's k x k kernel at recorded pixel `pixel` (turbo,
/// symmetric around 0). `caption` says which and its scale.
QImage render_site_map(const vision::SiteTrace& site, int64_t head, int64_t pixel, QString* caption);

}  // namespace sparsescope::viewer
