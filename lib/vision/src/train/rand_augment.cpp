#include "sparsescope/vision/rand_augment.h"

#include <ATen/ATen.h>

#include <cmath>

#include "host_to_device.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Per-image values [B] as [B, 1, 1, 1] for broadcasting over pixels.
at::Tensor per_image(const at::Tensor& v) { return v.view({-1, 1, 1, 1}); }

// PIL's Image.blend(degenerate, image, factor) on uint8 levels: truncated, clipped (ImageEnhance).
at::Tensor blend(const at::Tensor& degenerate, const at::Tensor& image, const at::Tensor& factor) {
  return (degenerate + per_image(factor) * (image - degenerate)).floor_().clamp_(0, 255);
}

// PIL's RGB -> L: (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16, as [B, 1, H, W].
at::Tensor luma(const at::Tensor& v) {
  return (v.select(1, 0) * 19595 + v.select(1, 1) * 38470 + v.select(1, 2) * 7471 + 32768).div_(65536).floor_().unsqueeze(1);
}

// ImageEnhance's factor: 1 + magnitude / 10 * 0.9, negated at random (timm's *Increasing ops);
// computed in double as Python does, then float as Pillow's blend takes it.
at::Tensor enhance_factor(const at::Tensor& magnitudes, const at::Tensor& signs) {
  return (magnitudes.to(at::kDouble) / 10.0 * 0.9 * signs.to(at::kDouble) + 1.0).to(magnitudes.scalar_type());
}

// A per-band lookup table [B, 3, 256] applied to uint8 levels.
at::Tensor apply_lut(const at::Tensor& v, const at::Tensor& lut) {
  const int64_t B = v.size(0), C = v.size(1);
  return lut.gather(2, v.reshape({B, C, -1}).to(at::kLong)).view(v.sizes()).to(v.scalar_type());
}

// Per band: the histogram [B, 3, 256] of uint8 levels.
at::Tensor histograms(const at::Tensor& v) {
  const int64_t B = v.size(0), C = v.size(1);
  const at::Tensor index = v.reshape({B, C, -1}).to(at::kLong);
  return at::zeros({B, C, 256}, v.options()).scatter_add_(2, index, at::ones_like(index, v.options()));
}

at::Tensor auto_contrast(const at::Tensor& v) {  // ImageOps.autocontrast(cutoff=0)
  const at::Tensor flat = v.flatten(2);
  const at::Tensor lo = std::get<0>(flat.min(2)).unsqueeze(2), hi = std::get<0>(flat.max(2)).unsqueeze(2);  // [B, 3, 1]
  const at::Tensor levels = at::arange(256, v.options()).view({1, 1, 256});
  const at::Tensor scale = 255.0 / (hi - lo).clamp_min(1);
  const at::Tensor stretched = (levels * scale - lo * scale).trunc().clamp(0, 255);
  return apply_lut(v, at::where(hi > lo, stretched, levels.expand_as(stretched)));
}

at::Tensor equalize(const at::Tensor& v) {  // ImageOps.equalize
  const at::Tensor h = histograms(v);  // [B, 3, 256]
  const at::Tensor levels = at::arange(256, v.options()).view({1, 1, 256});
  // The count in the last non-empty bin: step = (total - that count) // 255.
  const at::Tensor last = (h.gt(0) * levels).argmax(2, /*keepdim=*/true);
  const at::Tensor step = ((h.sum(2, true) - h.gather(2, last)) / 255).floor();
  const at::Tensor before = h.cumsum(2) - h;  // exclusive prefix sums
  const at::Tensor lut = ((step / 2).floor() + before).div(step.clamp_min(1)).floor().clamp(0, 255);
  return apply_lut(v, at::where(step > 0, lut, levels.expand_as(lut)));
}

// Image.transform(AFFINE) with fill: output pixel centre p (pixels) samples the input at A p + t.
at::Tensor affine(const at::Tensor& v, const at::Tensor& matrices, const RandAugmentOptions& o) {
  const int64_t B = v.size(0), H = v.size(2), W = v.size(3);
  const auto opts = v.options();
  const at::Tensor xs = at::arange(W, opts).add_(0.5).view({1, 1, W}).expand({B, H, W});
  const at::Tensor ys = at::arange(H, opts).add_(0.5).view({1, H, 1}).expand({B, H, W});
  const auto m = [&](int64_t i) { return matrices.select(1, i).view({B, 1, 1}); };
  const at::Tensor xin = m(0) * xs + m(1) * ys + m(2), yin = m(3) * xs + m(4) * ys + m(5);
  const at::Tensor grid = at::stack({xin * (2.0 / W) - 1, yin * (2.0 / H) - 1}, 3);
  const at::Tensor sampled =
      at::grid_sampler(v, grid, /*bicubic*/ 2, /*border*/ 1, /*align_corners=*/false).round_().clamp_(0, 255);
  const at::Tensor inside = (xin >= 0) & (xin < W) & (yin >= 0) & (yin < H);
  const at::Tensor fill_cpu = at::tensor(at::ArrayRef<float>(o.fill.data(), 3));
  const at::Tensor fill = detail::to_device_async(fill_cpu, v.device()).mul(255).round_().view({1, 3, 1, 1});
  return at::where(inside.unsqueeze(1), sampled, fill);
}

}  // namespace

at::Tensor rand_op(RandOp op, const at::Tensor& images, const at::Tensor& magnitudes, const at::Tensor& signs,
                   const RandAugmentOptions& o) {
  SPARSESCOPE_CHECK(images.dim() == 4 && images.size(1) == 3, "rand_augment: expected RGB images [B, 3, H, W], got ",
                    images.sizes());
  const at::Tensor v = images.to(at::kFloat).mul(255).round_().clamp_(0, 255);
  const at::Tensor m = detail::to_device_async(magnitudes, v.device()).to(at::kFloat);
  const at::Tensor s = detail::to_device_async(signs, v.device()).to(at::kFloat);
  const int64_t B = v.size(0), H = v.size(2), W = v.size(3);
  at::Tensor out;
  switch (op) {
    case RandOp::AutoContrast: out = auto_contrast(v); break;
    case RandOp::Equalize: out = equalize(v); break;
    case RandOp::Invert: out = 255 - v; break;
    case RandOp::Posterize: {  // bits = 4 - int(m / 10 * 4): keep the top bits
      const at::Tensor unit = at::pow(2.0, 8 - (4 - (m / 10 * 4).trunc()));
      out = (v / per_image(unit)).floor_() * per_image(unit);
      break;
    }
    case RandOp::Solarize: {  // threshold 256 - int(m / 10 * 256)
      const at::Tensor threshold = per_image(256 - (m / 10 * 256).trunc());
      out = at::where(v >= threshold, 255 - v, v);
      break;
    }
    case RandOp::SolarizeAdd: {  // add int(m / 10 * 110) below 128
      out = at::where(v < 128, (v + per_image((m / 10 * 110).trunc())).clamp_max(255), v);
      break;
    }
    case RandOp::Color: out = blend(luma(v).expand_as(v), v, enhance_factor(m, s)); break;
    case RandOp::Contrast: {  // the grey of the L image's mean, int(mean + 0.5)
      const at::Tensor mean = luma(v).mean({1, 2, 3}).add(0.5).floor();
      out = blend(per_image(mean).expand_as(v), v, enhance_factor(m, s));
      break;
    }
    case RandOp::Brightness: out = blend(at::zeros_like(v), v, enhance_factor(m, s)); break;
    case RandOp::Sharpness: {  // ImageFilter.SMOOTH (1 1 1 / 1 5 1 / 1 1 1, / 13, rounded), edges kept
      const at::Tensor kernel = at::tensor({1.f, 1.f, 1.f, 1.f, 5.f, 1.f, 1.f, 1.f, 1.f}, v.options()).div_(13).view({1, 1, 3, 3});
      const at::Tensor smooth = at::conv2d(v.reshape({B * 3, 1, H, W}), kernel).add_(0.5).floor_().clamp_(0, 255);
      at::Tensor degenerate = v.clone();
      degenerate.narrow(2, 1, H - 2).narrow(3, 1, W - 2).copy_(smooth.view({B, 3, H - 2, W - 2}));
      out = blend(degenerate, v, enhance_factor(m, s));
      break;
    }
    case RandOp::Rotate:
    case RandOp::ShearX:
    case RandOp::ShearY:
    case RandOp::TranslateX:
    case RandOp::TranslateY: {
      at::Tensor a = at::zeros({B, 6}, v.options());
      a.select(1, 0).fill_(1);
      a.select(1, 4).fill_(1);
      if (op == RandOp::Rotate) {  // Image.rotate(m / 10 * 30 degrees, anticlockwise) about the centre
        const at::Tensor t = m / 10 * 30 * s * (kPi / 180);
        const at::Tensor c = at::cos(t), n = at::sin(t);
        const double cx = W / 2.0, cy = H / 2.0;
        a = at::stack({c, -n, cx - c * cx + n * cy, n, c, cy - n * cx - c * cy}, 1);
      } else if (op == RandOp::ShearX) {
        a.select(1, 1).copy_(m / 10 * 0.3 * s);
      } else if (op == RandOp::ShearY) {
        a.select(1, 3).copy_(m / 10 * 0.3 * s);
      } else if (op == RandOp::TranslateX) {
        a.select(1, 2).copy_(m / 10 * o.translate_pct * s * W);
      } else {
        a.select(1, 5).copy_(m / 10 * o.translate_pct * s * H);
      }
      out = affine(v, a, o);
      break;
    }
  }
  return out.div_(255).to(images.scalar_type());
}

at::Tensor rand_augment(const at::Tensor& images, const RandAugmentOptions& o, at::Generator& gen) {
  SPARSESCOPE_CHECK(o.layers >= 0 && o.prob >= 0 && o.prob <= 1 && o.magnitude_std >= 0, "rand_augment: bad options");
  const int64_t B = images.size(0);
  // Per image and layer: the op, whether it applies, its magnitude and its sign.
  const at::Tensor ops = at::randint(kRandOps, {B, o.layers}, gen);
  const at::Tensor apply = at::rand({B, o.layers}, gen, at::kDouble).lt(o.prob);
  const at::Tensor magnitudes =
      (at::randn({B, o.layers}, gen, at::kDouble) * o.magnitude_std + o.magnitude).clamp(0, 10).to(at::kFloat);
  const at::Tensor signs = at::rand({B, o.layers}, gen, at::kDouble).lt(0.5).to(at::kFloat) * 2 - 1;
  at::Tensor x = images.to(at::kFloat).mul(255).round_().div_(255);
  for (int64_t layer = 0; layer < o.layers; ++layer) {
    for (int op = 0; op < kRandOps; ++op) {
      const at::Tensor chosen = (ops.select(1, layer).eq(op) & apply.select(1, layer)).nonzero().view(-1);
      if (chosen.numel() == 0) continue;
      const at::Tensor index = detail::to_device_async(chosen, images.device());
      const at::Tensor done = rand_op(static_cast<RandOp>(op), x.index_select(0, index),
                                      magnitudes.select(1, layer).index_select(0, chosen),
                                      signs.select(1, layer).index_select(0, chosen), o);
      x.index_copy_(0, index, done);
    }
  }
  return x.to(images.scalar_type());
}

}  // namespace sparsescope::vision
