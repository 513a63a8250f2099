#include "sparsescope/vision/augment.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "host_to_device.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

// Uniform draws per image, taken as one [B, K] CPU tensor so that their order is fixed.
constexpr int kTries = 10;
// augment_geometry: per try (area, aspect), then top, left, flip, shift x, shift y.
constexpr int kColTop = 2 * kTries, kColLeft = kColTop + 1, kColFlip = kColTop + 2, kColShiftX = kColTop + 3,
              kColShiftY = kColTop + 4, kGeometryCols = kColTop + 5;
// random_erase: apply?, per try (area, aspect), then top, left.
constexpr int kEraseColTop = 1 + 2 * kTries, kEraseColLeft = kEraseColTop + 1, kEraseCols = kEraseColTop + 2;

// An integer uniformly in [0, n) from a uniform draw u in [0, 1).
int64_t pick(double u, int64_t n) { return std::min<int64_t>(static_cast<int64_t>(u * static_cast<double>(n)), n - 1); }

struct Box {
  int64_t top, left, height, width;
};

// torchvision RandomResizedCrop.get_params on an H x W image.
Box crop_box(const double* u, int64_t H, int64_t W, const AugmentOptions& o) {
  const double area = static_cast<double>(H * W);
  const double log_r0 = std::log(o.ratio_min), log_r1 = std::log(o.ratio_max);
  for (int t = 0; t < kTries; ++t) {
    const double target = area * (o.scale_min + (o.scale_max - o.scale_min) * u[2 * t]);
    const double aspect = std::exp(log_r0 + (log_r1 - log_r0) * u[2 * t + 1]);
    const auto w = static_cast<int64_t>(std::lround(std::sqrt(target * aspect)));
    const auto h = static_cast<int64_t>(std::lround(std::sqrt(target / aspect)));
    if (w > 0 && w <= W && h > 0 && h <= H) return {pick(u[kColTop], H - h + 1), pick(u[kColLeft], W - w + 1), h, w};
  }
  const double in_ratio = static_cast<double>(W) / static_cast<double>(H);
  int64_t w = W, h = H;
  if (in_ratio < o.ratio_min) {
    h = std::lround(static_cast<double>(w) / o.ratio_min);
  } else if (in_ratio > o.ratio_max) {
    w = std::lround(static_cast<double>(h) * o.ratio_max);
  }
  return {(H - h) / 2, (W - w) / 2, h, w};
}

}  // namespace

at::Tensor augment_geometry(const at::Tensor& images, const AugmentOptions& o, at::Generator& gen) {
  SPARSESCOPE_CHECK(images.dim() == 4 && at::isFloatingType(images.scalar_type()),
                    "augment: expected float images [B, C, H, W], got ", images.scalar_type(), " ", images.sizes());
  SPARSESCOPE_CHECK(o.scale_min > 0 && o.scale_min <= o.scale_max && o.scale_max <= 1.0, "augment: crop scale range [",
                    o.scale_min, ", ", o.scale_max, "] must lie in (0, 1]");
  SPARSESCOPE_CHECK(o.ratio_min > 0 && o.ratio_min <= o.ratio_max, "augment: bad aspect-ratio range [", o.ratio_min,
                    ", ", o.ratio_max, "]");
  SPARSESCOPE_CHECK(o.pad >= 0, "augment: negative padding ", o.pad);
  const int64_t B = images.size(0), H = images.size(2), W = images.size(3);
  const bool rescale = o.scale_min < 1.0;
  const at::Tensor draws = at::rand({B, kGeometryCols}, gen, at::kDouble);
  const at::Tensor theta = at::zeros({B, 2, 3}, at::kDouble);  // output -> input, normalised coordinates
  auto t = theta.accessor<double, 3>();
  for (int64_t b = 0; b < B; ++b) {
    const double* u = draws.data_ptr<double>() + b * kGeometryCols;
    const Box box = rescale ? crop_box(u, H, W, o) : Box{0, 0, H, W};
    const int64_t dx = o.pad > 0 ? pick(u[kColShiftX], 2 * o.pad + 1) - o.pad : 0;
    const int64_t dy = o.pad > 0 ? pick(u[kColShiftY], 2 * o.pad + 1) - o.pad : 0;
    const bool flip = o.hflip && u[kColFlip] < 0.5;
    // With align_corners=False, pixel edges 0 and W map to -1 and 1: the box [left, left + width)
    // spans (2 left / W - 1, 2 (left + width) / W - 1).
    t[b][0][0] = (flip ? -1.0 : 1.0) * static_cast<double>(box.width) / static_cast<double>(W);
    t[b][0][2] = static_cast<double>(2 * (box.left + dx) + box.width) / static_cast<double>(W) - 1.0;
    t[b][1][1] = static_cast<double>(box.height) / static_cast<double>(H);
    t[b][1][2] = static_cast<double>(2 * (box.top + dy) + box.height) / static_cast<double>(H) - 1.0;
  }
  const at::Tensor grid = at::affine_grid_generator(
      detail::to_device_async(theta.to(images.scalar_type()), images.device()), images.sizes(), /*align_corners=*/false);
  return at::grid_sampler(images, grid, /*interpolation_mode=*/rescale ? 0 : 1, /*padding_mode=*/0,
                          /*align_corners=*/false);
}

at::Tensor random_erase(const at::Tensor& images, double probability, at::Generator& gen, bool pixel_fill) {
  SPARSESCOPE_CHECK(images.dim() == 4, "random_erase: expected images [B, C, H, W], got ", images.sizes());
  SPARSESCOPE_CHECK(probability >= 0 && probability <= 1, "random_erase: probability ", probability,
                    " is not in [0, 1]");
  const int64_t B = images.size(0), H = images.size(2), W = images.size(3);
  const at::Tensor draws = at::rand({B, kEraseCols}, gen, at::kDouble);
  const at::Tensor boxes = at::zeros({B, 4}, at::kLong);  // top, left, height, width; height 0: none
  auto box = boxes.accessor<int64_t, 2>();
  const double area = static_cast<double>(H * W);
  const double log_r = std::log(0.3);
  for (int64_t b = 0; b < B; ++b) {
    const double* u = draws.data_ptr<double>() + b * kEraseCols;
    if (u[0] >= probability) continue;
    for (int t = 0; t < kTries; ++t) {
      const double target = area * (0.02 + (1.0 / 3.0 - 0.02) * u[1 + 2 * t]);
      const double aspect = std::exp(log_r + (-2.0 * log_r) * u[2 + 2 * t]);
      const auto h = static_cast<int64_t>(std::lround(std::sqrt(target * aspect)));
      const auto w = static_cast<int64_t>(std::lround(std::sqrt(target / aspect)));
      if (h > 0 && w > 0 && h < H && w < W) {
        box[b][0] = pick(u[kEraseColTop], H - h + 1);
        box[b][1] = pick(u[kEraseColLeft], W - w + 1);
        box[b][2] = h;
        box[b][3] = w;
        break;
      }
    }
  }
  const at::Tensor d = detail::to_device_async(boxes, images.device());
  const auto rows = at::arange(H, d.options()).view({1, H, 1});
  const auto cols = at::arange(W, d.options()).view({1, 1, W});
  const auto col = [&](int64_t i) { return d.select(1, i).view({B, 1, 1}); };
  const at::Tensor mask = rows.ge(col(0)) & rows.lt(col(0) + col(2)) & cols.ge(col(1)) & cols.lt(col(1) + col(3));
  if (!pixel_fill) return images.masked_fill(mask.unsqueeze(1), 0);  // [B, 1, H, W] over every channel
  const at::Tensor noise = at::randn(images.sizes(), gen, images.scalar_type());
  return at::where(mask.unsqueeze(1), detail::to_device_async(noise, images.device()), images);
}

}  // namespace sparsescope::vision
