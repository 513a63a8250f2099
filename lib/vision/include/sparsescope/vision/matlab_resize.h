#pragma once
// MATLAB's imresize(img, scale, 'bicubic') as BasicSR's matlab_functions.imresize computes it: the
// degradation that makes the LR images of the SR benchmarks (Set5, Set14, BSD100, DIV2K).
#include <ATen/core/Tensor.h>

namespace sparsescope::vision {

/// Resizes a floating-point [C, H, W] or [N, C, H, W] tensor by `scale` to ceil(H * scale) x
/// ceil(W * scale): Keys' cubic kernel (a = -0.5), widened by 1 / scale when downscaling with
/// `antialias`, weights normalised per output pixel, symmetric (mirror) padding at the borders.
/// Computed in float64 whatever the input's dtype; returns the input's dtype, unclamped.
/// Throws sparsescope::Error on another rank, a non-floating dtype or a scale that is not positive.
at::Tensor matlab_imresize(const at::Tensor& image, double scale, bool antialias = true);

}  // namespace sparsescope::vision
