#include "sparsescope/vision/mixup.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

double uniform(at::Generator& gen) { return at::rand({1}, gen, at::kDouble).item<double>(); }

// Beta(a, a) as the ratio of two Gamma(a) draws.
double beta(double alpha, at::Generator& gen) {
  const at::Tensor g = at::_standard_gamma(at::full({2}, alpha, at::kDouble), gen);
  return g[0].item<double>() / g.sum().item<double>();
}

int64_t randint(int64_t high, at::Generator& gen) { return at::randint(high, {1}, gen).item<int64_t>(); }

}  // namespace

MixDraw draw_mix(const MixupOptions& o, int64_t height, int64_t width, at::Generator& gen) {
  SPARSESCOPE_CHECK(o.mixup_alpha >= 0 && o.cutmix_alpha >= 0 && o.prob >= 0 && o.prob <= 1 && o.switch_prob >= 0 &&
                        o.switch_prob <= 1,
                    "mixup: bad options (mixup ", o.mixup_alpha, ", cutmix ", o.cutmix_alpha, ", prob ", o.prob,
                    ", switch prob ", o.switch_prob, ")");
  MixDraw draw;
  if (!o.active() || uniform(gen) >= o.prob) return draw;
  if (o.mixup_alpha > 0 && o.cutmix_alpha > 0) {
    draw.cutmix = uniform(gen) < o.switch_prob;
    draw.lam = beta(draw.cutmix ? o.cutmix_alpha : o.mixup_alpha, gen);
  } else if (o.mixup_alpha > 0) {
    draw.lam = beta(o.mixup_alpha, gen);
  } else {
    draw.cutmix = true;
    draw.lam = beta(o.cutmix_alpha, gen);
  }
  if (draw.cutmix && draw.lam != 1.0) {
    const double ratio = std::sqrt(1.0 - draw.lam);
    const auto cut_h = static_cast<int64_t>(static_cast<double>(height) * ratio);
    const auto cut_w = static_cast<int64_t>(static_cast<double>(width) * ratio);
    const int64_t cy = randint(height, gen), cx = randint(width, gen);
    draw.y0 = std::clamp<int64_t>(cy - cut_h / 2, 0, height);
    draw.y1 = std::clamp<int64_t>(cy + cut_h / 2, 0, height);
    draw.x0 = std::clamp<int64_t>(cx - cut_w / 2, 0, width);
    draw.x1 = std::clamp<int64_t>(cx + cut_w / 2, 0, width);
    draw.lam = 1.0 - static_cast<double>((draw.y1 - draw.y0) * (draw.x1 - draw.x0)) /
                         static_cast<double>(height * width);
  }
  return draw;
}

std::pair<at::Tensor, at::Tensor> apply_mix(const at::Tensor& images, const at::Tensor& labels, int64_t classes,
                                            const MixDraw& draw, double label_smoothing) {
  SPARSESCOPE_CHECK(images.dim() == 4 && labels.dim() == 1 && labels.size(0) == images.size(0), "mixup: images ",
                    images.sizes(), " and labels ", labels.sizes(), " must be [B, C, H, W] and [B]");
  SPARSESCOPE_CHECK(draw.lam == 1.0 || images.size(0) % 2 == 0, "mixup: the batch of ", images.size(0),
                    " must be even (timm pairs sample i with sample B - 1 - i)");
  const double off = label_smoothing / static_cast<double>(classes), on = 1.0 - label_smoothing + off;
  auto smooth = [&](const at::Tensor& y) {
    return at::full({y.size(0), classes}, off, images.options().dtype(at::kFloat)).scatter_(1, y.view({-1, 1}), on);
  };
  const at::Tensor targets = smooth(labels) * draw.lam + smooth(labels.flip(0)) * (1.0 - draw.lam);
  if (draw.lam == 1.0) return {images, targets};
  at::Tensor mixed;
  if (draw.cutmix) {
    mixed = images.clone();
    const auto box = [&](const at::Tensor& t) {
      return t.narrow(2, draw.y0, draw.y1 - draw.y0).narrow(3, draw.x0, draw.x1 - draw.x0);
    };
    box(mixed).copy_(box(images.flip(0)));
  } else {
    mixed = images * draw.lam + images.flip(0) * (1.0 - draw.lam);
  }
  return {mixed, targets};
}

at::Tensor soft_target_cross_entropy(const at::Tensor& logits, const at::Tensor& targets) {
  return (-targets * at::log_softmax(logits.to(at::kFloat), -1)).sum(-1).mean();
}

}  // namespace sparsescope::vision
