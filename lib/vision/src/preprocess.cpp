// Mirrors, step for step (scripts/fixtures/make_image_fixtures.py checks the same steps against
// torchvision once and the tests check this file against that script's fixtures):
//   timm/data/transforms_factory.py `transforms_imagenet_eval`:
//     scale_size = math.floor(img_size / crop_pct); Resize(scale_size); CenterCrop(img_size);
//     MaybeToTensor(); Normalize(mean=torch.tensor(mean), std=torch.tensor(std))
//   torchvision/transforms/functional.py `resize` -> `_compute_resized_output_size` and PIL
//     `img.resize`, `center_crop`, `to_tensor` (`img.to(float32).div(255)`) and `normalize`
//     (`tensor.sub_(mean).div_(std)` on float32 tensors).
#include "sparsescope/vision/preprocess.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

int EvalTransform::scale_size() const {
  SPARSESCOPE_CHECK(img_size > 0, "eval transform: img_size must be positive, got ", img_size);
  SPARSESCOPE_CHECK(std::isfinite(crop_pct) && crop_pct > 0, "eval transform: crop_pct must be positive, got ",
                    crop_pct);
  const double scale = std::floor(img_size / crop_pct);
  SPARSESCOPE_CHECK(scale >= 1 && scale <= 1 << 20, "eval transform: img_size ", img_size, " / crop_pct ",
                    crop_pct, " gives resize size ", scale, ", outside [1, 2^20]");
  return static_cast<int>(scale);
}

Image eval_geometry(const Image& image, const EvalTransform& transform) {
  const int scale = transform.scale_size();
  const Image resized = resize_shorter_side(image, scale, transform.interpolation);
  return center_crop(resized, transform.img_size, transform.img_size);
}

at::Tensor normalize_image(const Image& image, const std::array<float, 3>& mean, const std::array<float, 3>& std) {
  for (int c = 0; c < 3; ++c) {
    SPARSESCOPE_CHECK(std[c] != 0.0f && std::isfinite(std[c]), "normalize: std[", c, "] must be finite and non-zero, got ",
                      std[c]);
  }
  const at::Tensor chw = image_to_tensor(image).permute({2, 0, 1}).contiguous();  // [3, H, W]
  const at::Tensor m = at::tensor(at::ArrayRef<float>(mean.data(), 3)).view({3, 1, 1});
  const at::Tensor s = at::tensor(at::ArrayRef<float>(std.data(), 3)).view({3, 1, 1});
  return chw.to(at::kFloat).div(255).sub_(m).div_(s);
}

at::Tensor eval_transform(const Image& image, const EvalTransform& transform) {
  return normalize_image(eval_geometry(image, transform), transform.mean, transform.std);
}

at::Tensor eval_transform_batch(const std::vector<Image>& images, const EvalTransform& transform) {
  SPARSESCOPE_CHECK(!images.empty(), "eval transform: empty batch");
  std::vector<at::Tensor> tensors;
  tensors.reserve(images.size());
  for (const Image& image : images) tensors.push_back(eval_transform(image, transform));
  return at::stack(tensors);  // [B, 3, H, W]
}

at::Tensor image_to_tensor(const Image& image) {
  SPARSESCOPE_CHECK(image.width > 0 && image.height > 0, "image_to_tensor: invalid image size ", image.width,
                    " x ", image.height);
  SPARSESCOPE_CHECK(image.pixels.size() == image.row_bytes() * static_cast<std::size_t>(image.height),
                    "image_to_tensor: ", image.width, " x ", image.height, " RGB image needs ",
                    image.row_bytes() * static_cast<std::size_t>(image.height), " bytes, has ", image.pixels.size());
  at::Tensor out = at::empty({image.height, image.width, 3}, at::kByte);  // [H, W, 3]
  std::memcpy(out.data_ptr<std::uint8_t>(), image.pixels.data(), image.pixels.size());
  return out;
}

Image tensor_to_image(const at::Tensor& hwc) {
  SPARSESCOPE_CHECK(hwc.defined(), "tensor_to_image: undefined tensor");
  SPARSESCOPE_CHECK(hwc.scalar_type() == at::kByte, "tensor_to_image: expected a uint8 tensor, got ",
                    hwc.scalar_type());
  SPARSESCOPE_CHECK(hwc.dim() == 3 && hwc.size(2) == 3, "tensor_to_image: expected shape [H, W, 3], got ",
                    hwc.sizes());
  SPARSESCOPE_CHECK(hwc.size(0) > 0 && hwc.size(1) > 0 &&
                        static_cast<std::size_t>(hwc.size(0) * hwc.size(1)) <= kMaxImagePixels,
                    "tensor_to_image: unsupported image size ", hwc.sizes());
  const at::Tensor cpu = hwc.to(at::kCPU).contiguous();
  Image image;
  image.height = static_cast<int>(cpu.size(0));
  image.width = static_cast<int>(cpu.size(1));
  const auto* p = cpu.data_ptr<std::uint8_t>();
  image.pixels.assign(p, p + cpu.numel());
  return image;
}

}  // namespace sparsescope::vision
