#include "sr_compare.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>

#include "image_convert.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/colormap.h"
#include "sparsescope/vision/matlab_resize.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/sr_eval.h"
#include "sparsescope/vision/trace_metadata.h"

namespace sparsescope::viewer {

namespace {

QImage picture(const at::Tensor& chw_uint8) { return to_qimage(chw_uint8.permute({1, 2, 0}).contiguous()); }

}  // namespace

void SrRunner::load(const std::string& weights, const std::string& model) {
  model_ = vision::load_sr_model(weights, model);
  weights_ = weights;
}

SrComparison SrRunner::run(const vision::Image& image, int64_t tile, int64_t record_size) {
  SPARSESCOPE_CHECK(loaded(), "no super-resolution weights loaded");
  const int64_t s = model_->scale();
  const at::Tensor sr = vision::upscale_image(*model_, image, tile, 16);
  const at::NoGradGuard no_grad;
  const at::Tensor lr = vision::image_to_tensor(image).permute({2, 0, 1}).contiguous();  // uint8 [3, h, w]
  SrComparison c;
  c.scale = s;
  const at::Tensor bicubic =
      vision::sr_to_8bit(vision::matlab_imresize(lr.unsqueeze(0).to(at::kFloat).div(255), static_cast<double>(s)));
  const at::Tensor difference = (sr.to(at::kFloat) - bicubic.to(at::kFloat)).abs().mean(0);  // [H, W]
  c.max_difference = std::max(1.0, difference.max().item<double>());
  c.lr = picture(lr.repeat_interleave(s, 1).repeat_interleave(s, 2));
  c.bicubic = picture(bicubic);
  c.sr = picture(sr);
  c.difference = to_qimage(vision::apply_colormap(difference, vision::Colormap::Magma, 0, c.max_difference));
  c.trace = model_->record(image, record_size, "");
  c.crop = vision::central_crop(image, record_size);
  return c;
}

std::optional<int64_t> recorded_pixel(const SrComparison& c, int column, int row) {
  const int64_t x = column / c.scale - c.crop.left, y = row / c.scale - c.crop.top;
  if (x < 0 || y < 0 || x >= c.crop.width || y >= c.crop.height) return std::nullopt;
  return y * c.crop.width + x;
}

QImage render_site_map(const vision::SiteTrace& site, int64_t head, int64_t pixel, QString* caption) {
  if (site.kind == vision::kKernelMap) {
    const at::Tensor kernel = vision::kernel_at(site, head, pixel);
    const double bound = std::max(1e-12, kernel.abs().max().item<double>());
    *caption = QString("kernel of group %1 at LR pixel %2 (turbo: -%3 .. +%3)").arg(head).arg(pixel).arg(bound, 0, 'g', 3);
    return to_qimage(vision::apply_colormap(kernel, vision::Colormap::Turbo, -bound, bound));
  }
  const at::Tensor weights = site.probs[head].to(at::kFloat);
  const double hi = std::max(1e-12, weights.max().item<double>());
  const double nonzero = weights.ne(0).to(at::kFloat).mean().item<double>();
  *caption = QString("channel attention of head %1 after ReLU: %2 % non-zero (viridis: 0 .. %3)")
                 .arg(head)
                 .arg(100 * nonzero, 0, 'f', 1)
                 .arg(hi, 0, 'g', 3);
  return to_qimage(vision::apply_colormap(weights, vision::Colormap::Viridis, 0, hi));
}

}  // namespace sparsescope::viewer
