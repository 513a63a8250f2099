#include "lut_views.h"

#include <ATen/ATen.h>

#include <cmath>

#include "train/host_to_device.h"

namespace sparsescope::vision::detail {

namespace {

constexpr int64_t kPad = 4;

// Per-image uniform draws in [lo, hi): [B] float on the CPU. The draws of a step go to the device
// with to_device_async: a plain copy from pageable memory would wait for the device's queue.
at::Tensor uniform(int64_t n, double lo, double hi, at::Generator& gen) {
  return at::empty({n}, at::kFloat).uniform_(lo, hi, gen);
}

at::Tensor uniform(int64_t n, double lo, double hi, at::Generator& gen, at::Device device) {
  return to_device_async(uniform(n, lo, hi, gen), device);
}

// [B] -> [B, 1, 1, 1] for broadcasting over images.
at::Tensor per_image(const at::Tensor& t) { return t.view({-1, 1, 1, 1}); }

// RandomCrop(size, padding=4, padding_mode='reflect') and RandomHorizontalFlip.
at::Tensor crop_and_flip(const at::Tensor& x, at::Generator& gen) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const at::Tensor padded = at::reflection_pad2d(x, {kPad, kPad, kPad, kPad});
  const auto device = x.device();
  const at::Tensor top = to_device_async(at::randint(0, 2 * kPad + 1, {B}, gen), device);
  const at::Tensor left = to_device_async(at::randint(0, 2 * kPad + 1, {B}, gen), device);
  const at::Tensor flip = to_device_async(at::rand({B}, gen).lt(0.5), device);
  const auto index = at::TensorOptions().dtype(at::kLong).device(device);
  const at::Tensor rows = top.view({B, 1, 1, 1}) + at::arange(H, index).view({1, 1, H, 1});
  at::Tensor cols = at::arange(W, index).view({1, 1, 1, W}).expand({B, 1, 1, W});
  cols = at::where(flip.view({B, 1, 1, 1}), (W - 1) - cols, cols) + left.view({B, 1, 1, 1});
  const at::Tensor b = at::arange(B, index).view({B, 1, 1, 1}), c = at::arange(C, index).view({1, C, 1, 1});
  return padded.index({b, c, rows, cols});
}

at::Tensor grayscale(const at::Tensor& x) {  // torchvision rgb_to_grayscale: [B, 1, H, W]
  return (0.2989 * x.select(1, 0) + 0.587 * x.select(1, 1) + 0.114 * x.select(1, 2)).unsqueeze(1);
}

at::Tensor blend(const at::Tensor& a, const at::Tensor& b, const at::Tensor& ratio) {
  return (per_image(ratio) * a + (1 - per_image(ratio)) * b).clamp(0, 1);
}

// torchvision's adjust_hue on float images: through HSV, hue shifted modulo 1.
at::Tensor adjust_hue(const at::Tensor& x, const at::Tensor& shift) {
  const at::Tensor r = x.select(1, 0), g = x.select(1, 1), b = x.select(1, 2);
  const at::Tensor maxc = std::get<0>(x.max(1)), minc = std::get<0>(x.min(1));
  const at::Tensor eqc = maxc.eq(minc), cr = maxc - minc;
  const at::Tensor ones = at::ones_like(maxc);
  const at::Tensor s = cr / at::where(eqc, ones, maxc);
  const at::Tensor cr_divisor = at::where(eqc, ones, cr);
  const at::Tensor rc = (maxc - r) / cr_divisor, gc = (maxc - g) / cr_divisor, bc = (maxc - b) / cr_divisor;
  const at::Tensor hr = maxc.eq(r) * (bc - gc);
  const at::Tensor hg = (maxc.eq(g) & maxc.ne(r)) * (2.0 + rc - bc);
  const at::Tensor hb = (maxc.ne(g) & maxc.ne(r)) * (4.0 + gc - rc);
  at::Tensor h = at::fmod((hr + hg + hb) / 6.0 + 1.0, 1.0);
  h = at::fmod(h + shift.view({-1, 1, 1}) + 1.0, 1.0);
  // HSV -> RGB
  const at::Tensor v = maxc;
  const at::Tensor i = at::floor(h * 6.0);
  const at::Tensor f = h * 6.0 - i;
  const at::Tensor sector = i.to(at::kLong).remainder(6);
  const at::Tensor p = (v * (1.0 - s)).clamp(0, 1), q = (v * (1.0 - s * f)).clamp(0, 1),
                   t = (v * (1.0 - s * (1.0 - f))).clamp(0, 1);
  const at::Tensor mask = sector.unsqueeze(1).eq(at::arange(6, sector.options()).view({1, 6, 1, 1}));  // [B, 6, H, W]
  const at::Tensor a1 = at::stack({v, q, p, p, t, v}, 1), a2 = at::stack({t, v, v, q, p, p}, 1),
                   a3 = at::stack({p, p, t, v, v, q}, 1);
  const auto pick = [&mask](const at::Tensor& a) { return (a * mask).sum(1); };
  return at::stack({pick(a1), pick(a2), pick(a3)}, 1);
}

// ColorJitter(0.4, 0.4, 0.2, 0.1): each image its four factors and its order of the four operations.
at::Tensor color_jitter(const at::Tensor& x, at::Generator& gen) {
  const int64_t B = x.size(0);
  const auto device = x.device();
  const at::Tensor brightness = uniform(B, 0.6, 1.4, gen, device), contrast = uniform(B, 0.6, 1.4, gen, device),
                   saturation = uniform(B, 0.8, 1.2, gen, device), hue = uniform(B, -0.1, 0.1, gen, device);
  at::Tensor order = at::empty({B, 4}, at::kLong);
  for (int64_t b = 0; b < B; ++b) order[b] = at::randperm(4, gen);
  order = to_device_async(order, device);
  at::Tensor out = x;
  for (int64_t slot = 0; slot < 4; ++slot) {
    const at::Tensor op = order.select(1, slot);
    const at::Tensor candidates[4] = {
        (per_image(brightness) * out).clamp(0, 1),
        blend(out, grayscale(out).mean({1, 2, 3}, true), contrast),
        blend(out, grayscale(out), saturation),
        adjust_hue(out, hue),
    };
    for (int64_t k = 0; k < 4; ++k) out = at::where(per_image(op.eq(k)), candidates[k], out);
  }
  return out;
}

// A Gaussian blur of per-image sigma [B] (on the CPU), separable, reflect-padded at the borders.
at::Tensor gaussian_blur(const at::Tensor& x, const at::Tensor& sigma) {
  const int64_t B = x.size(0), C = x.size(1);
  const int64_t radius = static_cast<int64_t>(std::ceil(3.0 * sigma.max().item<double>()));
  const int64_t size = std::min<int64_t>(2 * radius + 1, 2 * std::min(x.size(2), x.size(3)) - 1) | 1;
  const int64_t half = size / 2;
  const at::Tensor offsets = at::arange(-half, half + 1, x.options()).view({1, size});
  const at::Tensor variance = to_device_async(sigma, x.device()).to(x.scalar_type()).view({B, 1}).square();
  at::Tensor kernel = at::exp(-offsets.square() / (2 * variance));
  kernel = (kernel / kernel.sum(1, true)).repeat_interleave(C, 0);  // [B * C, size]
  at::Tensor planes = x.reshape({1, B * C, x.size(2), x.size(3)});
  planes = at::reflection_pad2d(planes, {half, half, half, half});
  planes = at::conv2d(planes, kernel.view({B * C, 1, 1, size}), at::Tensor(), at::IntArrayRef{1}, at::IntArrayRef{0}, at::IntArrayRef{1}, B * C);
  planes = at::conv2d(planes, kernel.view({B * C, 1, size, 1}), at::Tensor(), at::IntArrayRef{1}, at::IntArrayRef{0}, at::IntArrayRef{1}, B * C);
  return planes.view(x.sizes());
}

}  // namespace

std::pair<at::Tensor, at::Tensor> lut_views(const at::Tensor& images, at::Generator& gen) {
  const int64_t B = images.size(0);
  const auto device = images.device();
  const at::Tensor view1 = crop_and_flip(images, gen);
  at::Tensor view2 = crop_and_flip(images, gen);
  const at::Tensor jitter = to_device_async(at::rand({B}, gen).lt(0.8), device);
  view2 = at::where(per_image(jitter), color_jitter(view2, gen), view2);
  const at::Tensor choice = to_device_async(at::randint(0, 3, {B}, gen), device);
  const at::Tensor gray = grayscale(view2).expand_as(view2);
  const at::Tensor solarized = at::where(view2.ge(128.0 / 255.0), 1.0 - view2, view2);
  const at::Tensor blurred = gaussian_blur(view2, uniform(B, 0.1, 2.0, gen));
  view2 = at::where(per_image(choice.eq(0)), gray, at::where(per_image(choice.eq(1)), solarized, blurred));
  return {view1, view2};
}

}  // namespace sparsescope::vision::detail
