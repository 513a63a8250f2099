#include "sparsescope/vision/vit.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>

#include <optional>
#include <utility>

#include "blocks.h"
#include "sparsescope/kernels/error.h"
#include "train/host_to_device.h"

namespace sparsescope::vision {

namespace nn = torch::nn;

VisionTransformerImpl::VisionTransformerImpl(ViTConfig config) : config_(std::move(config)) {
  const auto& c = config_;
  // timm nests the projection as patch_embed.proj; a named submodule keeps the parameter names.
  auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>());
  patch_proj_ = patch_embed->register_module(
      "proj", nn::Conv2d(nn::Conv2dOptions(c.in_chans, c.embed_dim, c.patch_size).stride(c.patch_size)));
  cls_token_ = register_parameter("cls_token", at::zeros({1, 1, c.embed_dim}));
  if (c.distilled) dist_token_ = register_parameter("dist_token", at::zeros({1, 1, c.embed_dim}));
  pos_embed_ = register_parameter("pos_embed", at::zeros({1, c.tokens(), c.embed_dim}));
  blocks_ = register_module("blocks", nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks_->push_back(ViTBlock(c));
  SPARSESCOPE_CHECK(!c.global_pool || !c.distilled, c.name, ": global_pool takes no distillation token");
  SPARSESCOPE_CHECK(c.drop_path_rate >= 0 && c.drop_path_rate < 1, c.name, ": drop_path_rate ", c.drop_path_rate,
                    " must be in [0, 1)");
  const auto norm = nn::LayerNormOptions({c.embed_dim}).eps(c.norm_eps);
  if (c.global_pool) {
    fc_norm_ = register_module("fc_norm", nn::LayerNorm(norm));
  } else {
    norm_ = register_module("norm", nn::LayerNorm(norm));
  }
  SPARSESCOPE_CHECK(!c.head_norm || (!c.distilled && c.num_classes > 0), c.name,
                    ": head_norm needs a head and no distillation token");
  if (c.head_norm) {
    probe_head_ = register_module(
        "head", nn::Sequential(nn::BatchNorm1d(nn::BatchNorm1dOptions(c.embed_dim).affine(false).eps(1e-6)),
                               nn::Linear(c.embed_dim, c.num_classes)));
  } else if (c.num_classes > 0) {
    head_ = register_module("head", nn::Linear(c.embed_dim, c.num_classes));
    if (c.distilled) head_dist_ = register_module("head_dist", nn::Linear(c.embed_dim, c.num_classes));
  }
}

at::Tensor VisionTransformerImpl::forward_features(const at::Tensor& images, ProbeSet* probes) {
  const auto& c = config_;
  SPARSESCOPE_CHECK(images.dim() == 4 && images.size(1) == c.in_chans && images.size(2) == c.img_size &&
                        images.size(3) == c.img_size,
                    c.name, ": expected `images` [B, ", c.in_chans, ", ", c.img_size, ", ", c.img_size, "], got ",
                    images.sizes());
  const int64_t B = images.size(0);
  auto x = patch_proj_->forward(images).flatten(2).transpose(1, 2);  // [B, G*G, D]
  std::vector<at::Tensor> tokens{cls_token_.expand({B, -1, -1})};
  if (c.distilled) tokens.push_back(dist_token_.expand({B, -1, -1}));
  tokens.push_back(x);
  x = at::cat(tokens, 1) + pos_embed_;  // [B, T, D]
  const at::Tensor drop = is_training() ? std::exchange(drop_path_, at::Tensor()) : at::Tensor();
  SPARSESCOPE_CHECK(!drop.defined() || drop.sizes() == at::IntArrayRef({c.depth, 2, B}), c.name,
                    ": drop-path scales must be [depth, 2, B] = [", c.depth, ", 2, ", B, "], got ", drop.sizes());
  for (size_t i = 0; i < blocks_->size(); ++i) {
    x = blocks_[i]->as<ViTBlock>()->forward(x, probe_for(probes, "blocks." + std::to_string(i) + ".attn"),
                                            drop.defined() ? drop[static_cast<int64_t>(i)] : at::Tensor());
  }
  return norm_ ? norm_->forward(x) : x;
}

at::Tensor VisionTransformerImpl::forward(const at::Tensor& images, ProbeSet* probes) {
  return forward_head(forward_features(images, probes));
}

at::Tensor VisionTransformerImpl::forward_head(const at::Tensor& x) {
  if (config_.global_pool) {
    const int64_t prefix = config_.prefix_tokens();
    const auto pooled = fc_norm_->forward(x.narrow(1, prefix, x.size(1) - prefix).mean(1));  // [B, D]
    if (probe_head_) return probe_head_->forward(pooled);
    return head_ ? head_->forward(pooled) : pooled;
  }
  const auto cls = x.select(1, 0);  // [B, D]
  if (probe_head_) return probe_head_->forward(cls);
  if (!head_) return cls;
  if (!config_.distilled) return head_->forward(cls);
  // DeiT at inference: the class and distillation heads are averaged.
  return (head_->forward(cls) + head_dist_->forward(x.select(1, 1))) / 2;
}

at::Tensor drop_path_scales(const ViTConfig& c, int64_t batch, at::Generator* gen, const at::TensorOptions& options) {
  at::Tensor scales = at::ones({c.depth, 2, batch}, at::kFloat);
  const at::Tensor rates = at::linspace(0.0, c.drop_path_rate, c.depth, at::kFloat);  // as timm's dpr
  const std::optional<at::Generator> generator = gen ? std::optional<at::Generator>(*gen) : std::nullopt;
  for (int64_t i = 0; i < c.depth; ++i) {
    const double p = rates[i].item<float>();
    if (p <= 0) continue;
    scales[i] = at::bernoulli(at::full({2, batch}, 1.0 - p, at::kFloat), generator).div_(1.0 - p);
  }
  return detail::to_device_async(scales, options.device_opt().value_or(at::kCPU));
}

}  // namespace sparsescope::vision
