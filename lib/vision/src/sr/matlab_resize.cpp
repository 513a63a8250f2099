#include "sparsescope/vision/matlab_resize.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

double cubic(double x) {
  const double a = std::abs(x);
  if (a <= 1) return (1.5 * a - 2.5) * a * a + 1;
  if (a <= 2) return ((-0.5 * a + 2.5) * a - 4) * a + 2;
  return 0;
}

// The [out, in] matrix that resizes one axis: row i holds the normalised cubic weights of output
// pixel i, taps beyond the border folded back onto their mirror images (MATLAB's symmetric padding).
at::Tensor axis_weights(int64_t in, int64_t out, double scale, bool antialias) {
  const bool widen = scale < 1 && antialias;
  const double width = widen ? 4 / scale : 4;
  const int64_t taps = static_cast<int64_t>(std::ceil(width)) + 2;
  std::vector<double> matrix(static_cast<size_t>(out * in), 0.0);
  for (int64_t i = 0; i < out; ++i) {
    const double u = static_cast<double>(i + 1) / scale + 0.5 * (1 - 1 / scale);
    const double left = std::floor(u - width / 2);
    std::vector<double> w(static_cast<size_t>(taps));
    double sum = 0;
    for (int64_t t = 0; t < taps; ++t) {
      const double d = u - (left + static_cast<double>(t));
      w[static_cast<size_t>(t)] = widen ? scale * cubic(d * scale) : cubic(d);
      sum += w[static_cast<size_t>(t)];
    }
    for (int64_t t = 0; t < taps; ++t) {
      int64_t j = static_cast<int64_t>(left) + t - 1;  // 0-based source index
      while (j < 0 || j >= in) j = j < 0 ? -j - 1 : 2 * in - j - 1;
      matrix[static_cast<size_t>(i * in + j)] += w[static_cast<size_t>(t)] / sum;
    }
  }
  return at::tensor(matrix, at::kDouble).view({out, in});
}

}  // namespace

at::Tensor matlab_imresize(const at::Tensor& image, double scale, bool antialias) {
  SPARSESCOPE_CHECK(image.dim() == 3 || image.dim() == 4, "matlab_imresize: expected [C, H, W] or [N, C, H, W], got ",
                    image.sizes());
  SPARSESCOPE_CHECK(image.is_floating_point(), "matlab_imresize: expected a floating-point image, got ",
                    image.scalar_type());
  SPARSESCOPE_CHECK(std::isfinite(scale) && scale > 0, "matlab_imresize: scale must be positive, got ", scale);
  const int64_t h = image.size(-2), w = image.size(-1);
  const auto out_h = static_cast<int64_t>(std::ceil(static_cast<double>(h) * scale));
  const auto out_w = static_cast<int64_t>(std::ceil(static_cast<double>(w) * scale));
  SPARSESCOPE_CHECK(out_h > 0 && out_w > 0, "matlab_imresize: ", h, " x ", w, " at scale ", scale, " is empty");
  const at::Tensor rows = axis_weights(h, out_h, scale, antialias).to(image.device());
  const at::Tensor cols = axis_weights(w, out_w, scale, antialias).to(image.device());
  const at::Tensor x = image.to(at::kDouble);
  return at::matmul(at::matmul(rows, x), cols.t()).to(image.scalar_type());
}

}  // namespace sparsescope::vision
