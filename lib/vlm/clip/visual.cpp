#include "visual.h"

#include <ATen/ATen.h>

#include <cmath>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vlm {

namespace nn = torch::nn;

ClipVisionImpl::ClipVisionImpl(const ClipConfig& c) : image_size_(c.image_size) {
  const int64_t grid = c.image_size / c.patch_size;
  conv1_ = register_module(
      "conv1", nn::Conv2d(nn::Conv2dOptions(3, c.vision_width, c.patch_size).stride(c.patch_size).bias(false)));
  // VisionTransformer.__init__: scale * randn, scale = width^-1/2 (its init_parameters does nothing).
  const double scale = std::pow(static_cast<double>(c.vision_width), -0.5);
  class_embedding_ = register_parameter("class_embedding", scale * at::randn({c.vision_width}));
  positional_embedding_ = register_parameter("positional_embedding", scale * at::randn({grid * grid + 1, c.vision_width}));
  ln_pre_ = register_module("ln_pre", nn::LayerNorm(nn::LayerNormOptions({c.vision_width}).eps(1e-5)));
  transformer_ = register_module(
      "transformer", std::make_shared<ClipTransformerImpl>(TransformerShape{
                         c.vision_width, c.vision_heads, c.vision_layers, c.vision_mlp_ratio, c.quick_gelu, false}));
  ln_post_ = register_module("ln_post", nn::LayerNorm(nn::LayerNormOptions({c.vision_width}).eps(1e-5)));
  proj_ = register_parameter("proj", scale * at::randn({c.vision_width, c.embed_dim}));
}

std::pair<at::Tensor, at::Tensor> ClipVisionImpl::forward(const at::Tensor& images, vision::ProbeSet* probes) {
  SPARSESCOPE_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == image_size_ && images.size(3) == image_size_,
                    "CLIP image tower: expected images [B, 3, ", image_size_, ", ", image_size_, "], got ", images.sizes());
  at::Tensor x = conv1_->forward(images.to(class_embedding_.scalar_type()));  // [B, W, g, g]
  x = x.flatten(2).transpose(1, 2);                                          // [B, g*g, W]
  x = at::cat({class_embedding_.view({1, 1, -1}).expand({x.size(0), 1, x.size(2)}), x}, 1) + positional_embedding_;
  x = transformer_->forward(ln_pre_->forward(x), probes, "visual.transformer.");
  x = ln_post_->forward(x);
  return {at::matmul(x.select(1, 0), proj_), x.slice(1, 1)};
}

}  // namespace sparsescope::vlm
