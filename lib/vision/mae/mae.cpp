// MAE's model (models_mae.py) and LUT's additions (models_lut.py) on the ViT blocks shared with the
// ViT family; the masking, patchify, losses and initialisation as the official code does them.
#include "sparsescope/vision/mae.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>

#include <algorithm>
#include <cmath>

#include "../src/vit/blocks.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace nn = torch::nn;

namespace {

ViTConfig block_config(const MaeConfig& c, int64_t dim, int64_t heads) {
  ViTConfig v = mae_encoder_config(c);
  v.embed_dim = dim;
  v.num_heads = heads;
  return v;
}

// _build_mlp of models_lut.py: Linear (no bias), then the norm and the activation between layers.
nn::Sequential build_mlp(const MaeConfig& c, int64_t layers) {
  SPARSESCOPE_CHECK(c.head_norm.empty() || c.head_norm == "BN" || c.head_norm == "LN", "MAE-LUT: head_norm '",
                    c.head_norm, "' is not BN, LN or empty");
  SPARSESCOPE_CHECK(c.head_act == "ReLU" || c.head_act == "GELU", "MAE-LUT: head_act '", c.head_act,
                    "' is not ReLU or GELU");
  nn::Sequential mlp;
  for (int64_t l = 0; l < layers; ++l) {
    const int64_t in = l == 0 ? c.embed_dim : c.head_mlp_dim, out = l == layers - 1 ? c.embed_dim : c.head_mlp_dim;
    mlp->push_back(nn::Linear(nn::LinearOptions(in, out).bias(false)));
    if (l == layers - 1) break;
    if (c.head_norm == "BN") mlp->push_back(nn::BatchNorm1d(out));
    if (c.head_norm == "LN") mlp->push_back(nn::LayerNorm(nn::LayerNormOptions({out}).eps(1e-6)));
    if (c.head_act == "ReLU") {
      mlp->push_back(nn::ReLU(nn::ReLUOptions().inplace(true)));
    } else {
      mlp->push_back(nn::GELU());
    }
  }
  return mlp;
}

// The 1D embedding of positions `pos` [M] (float64): [M, dim] as sin | cos of pos * omega.
at::Tensor sincos_1d(int64_t dim, const at::Tensor& pos) {
  const at::Tensor omega = 1.0 / at::pow(10000.0, at::arange(dim / 2, at::kDouble) / (dim / 2.0));
  const at::Tensor out = pos.unsqueeze(1) * omega.unsqueeze(0);
  return at::cat({out.sin(), out.cos()}, 1);
}

}  // namespace

int64_t MaeConfig::visible(double mask_ratio) const {
  return static_cast<int64_t>(static_cast<double>(num_patches()) * (1.0 - mask_ratio));
}

ViTConfig mae_encoder_config(const MaeConfig& c) {
  ViTConfig v;
  v.name = c.name;
  v.img_size = c.img_size;
  v.patch_size = c.patch_size;
  v.in_chans = c.in_chans;
  v.embed_dim = c.embed_dim;
  v.depth = c.depth;
  v.num_heads = c.num_heads;
  v.mlp_ratio = c.mlp_ratio;
  v.qkv_bias = true;
  v.num_classes = 0;
  v.norm_eps = c.norm_eps;
  v.eval.img_size = static_cast<int>(c.img_size);
  v.eval.crop_pct = 1.0;  // images at the model's size: CIFAR's 32 x 32 as they are, photos resized and centre-cropped
  return v;
}

at::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid) {
  SPARSESCOPE_CHECK(dim % 4 == 0 && grid >= 1, "sincos_pos_embed_2d: dim ", dim, " must be a multiple of 4");
  // numpy's meshgrid(w, h): the first half encodes the column, the second the row.
  const at::Tensor coords = at::arange(grid, at::kDouble);
  const at::Tensor cols = coords.repeat({grid}), rows = coords.repeat_interleave(grid);
  const at::Tensor emb = at::cat({sincos_1d(dim / 2, cols), sincos_1d(dim / 2, rows)}, 1);
  return at::cat({at::zeros({1, dim}, at::kDouble), emb}, 0).to(at::kFloat);
}

namespace {

// The mask of the patches ids_shuffle[:, begin:begin + count] (0 kept, 1 removed), in patch order.
at::Tensor shuffled_mask(const at::Tensor& noise, const at::Tensor& ids_restore, int64_t begin, int64_t count) {
  at::Tensor mask = at::ones(noise.sizes(), noise.options().dtype(at::kFloat));
  mask.narrow(1, begin, count).zero_();
  return mask.gather(1, ids_restore);
}

}  // namespace

MaeMasking random_masking(const at::Tensor& noise, int64_t visible) {
  SPARSESCOPE_CHECK(noise.dim() == 2 && visible >= 1 && visible <= noise.size(1), "random_masking: noise [B, L] ",
                    noise.sizes(), " and ", visible, " visible patches");
  const at::Tensor ids_shuffle = noise.argsort(/*stable=*/false, 1);
  const at::Tensor ids_restore = ids_shuffle.argsort(/*stable=*/false, 1);
  return {ids_shuffle.narrow(1, 0, visible), shuffled_mask(noise, ids_restore, 0, visible), ids_restore};
}

LutMasking lut_random_masking(const at::Tensor& noise, int64_t visible) {
  SPARSESCOPE_CHECK(noise.dim() == 2 && visible >= 1 && 2 * visible <= noise.size(1), "lut_random_masking: two views of ",
                    visible, " visible patches need at least ", 2 * visible, " patches, got noise ", noise.sizes());
  const at::Tensor ids_shuffle = noise.argsort(/*stable=*/false, 1);
  const at::Tensor ids_restore = ids_shuffle.argsort(/*stable=*/false, 1);
  return {{ids_shuffle.narrow(1, 0, visible), shuffled_mask(noise, ids_restore, 0, visible), ids_restore},
          ids_shuffle.narrow(1, visible, visible),
          shuffled_mask(noise, ids_restore, visible, visible)};
}

MaskedAutoencoderImpl::MaskedAutoencoderImpl(const MaeConfig& c) : config_(c) {
  SPARSESCOPE_CHECK(c.img_size % c.patch_size == 0, "MAE: img_size ", c.img_size, " is not a multiple of patch_size ",
                    c.patch_size);
  SPARSESCOPE_CHECK(c.embed_dim % c.num_heads == 0 && c.decoder_embed_dim % c.decoder_num_heads == 0,
                    "MAE: widths must be multiples of their head counts");
  const int64_t tokens = c.num_patches() + 1;
  patch_embed_ = nn::Conv2d(nn::Conv2dOptions(c.in_chans, c.embed_dim, c.patch_size).stride(c.patch_size));
  auto patch_embed = std::make_shared<nn::Module>();
  patch_embed->register_module("proj", patch_embed_);
  register_module("patch_embed", patch_embed);
  cls_token_ = register_parameter("cls_token", at::zeros({1, 1, c.embed_dim}));
  // Fixed sin-cos embeddings: parameters without gradient, as the official code keeps them.
  pos_embed_ = register_parameter("pos_embed", sincos_pos_embed_2d(c.embed_dim, c.grid()).view({1, tokens, c.embed_dim}),
                                  /*requires_grad=*/false);
  nn::ModuleList blocks, decoder_blocks;
  for (int64_t i = 0; i < c.depth; ++i) {
    blocks_.push_back(std::make_shared<ViTBlockImpl>(block_config(c, c.embed_dim, c.num_heads)));
    blocks->push_back(blocks_.back());
  }
  register_module("blocks", blocks);
  norm_ = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({c.embed_dim}).eps(c.norm_eps)));
  decoder_embed_ = register_module("decoder_embed", nn::Linear(c.embed_dim, c.decoder_embed_dim));
  mask_token_ = register_parameter("mask_token", at::zeros({1, 1, c.decoder_embed_dim}));
  decoder_pos_embed_ = register_parameter(
      "decoder_pos_embed", sincos_pos_embed_2d(c.decoder_embed_dim, c.grid()).view({1, tokens, c.decoder_embed_dim}),
      /*requires_grad=*/false);
  for (int64_t i = 0; i < c.decoder_depth; ++i) {
    decoder_blocks_.push_back(std::make_shared<ViTBlockImpl>(block_config(c, c.decoder_embed_dim, c.decoder_num_heads)));
    decoder_blocks->push_back(decoder_blocks_.back());
  }
  register_module("decoder_blocks", decoder_blocks);
  decoder_norm_ = register_module("decoder_norm", nn::LayerNorm(nn::LayerNormOptions({c.decoder_embed_dim}).eps(c.norm_eps)));
  decoder_pred_ = register_module("decoder_pred", nn::Linear(c.decoder_embed_dim, c.patch_size * c.patch_size * c.in_chans));
  if (c.depth_head > 0) head_ = register_module("head", build_mlp(c, c.depth_head));
  if (c.depth_pred > 0) predictor_ = register_module("predictor", build_mlp(c, c.depth_pred));
}

void MaskedAutoencoderImpl::initialize(at::Generator& gen) {
  const at::NoGradGuard no_grad;
  auto xavier = [&gen](at::Tensor& w, int64_t fan_in, int64_t fan_out) {
    const double bound = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    w.uniform_(-bound, bound, gen);
  };
  for (const auto& item : named_modules()) {
    nn::Module& module = *item.value();
    if (auto* linear = module.as<nn::Linear>()) {
      xavier(linear->weight, linear->weight.size(1), linear->weight.size(0));
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* norm = module.as<nn::LayerNorm>()) {
      norm->weight.fill_(1.0);
      norm->bias.zero_();
    }
  }
  // The patch embedding like a Linear over its flattened kernel; its bias keeps nn.Conv2d's init.
  at::Tensor& w = patch_embed_->weight;
  xavier(w, w[0].numel(), w.size(0));
  const double bound = 1.0 / std::sqrt(static_cast<double>(w[0].numel()));
  patch_embed_->bias.uniform_(-bound, bound, gen);
  cls_token_.normal_(0.0, 0.02, gen);
  mask_token_.normal_(0.0, 0.02, gen);
}

at::Tensor MaskedAutoencoderImpl::patchify(const at::Tensor& images) const {
  const int64_t p = config_.patch_size, g = config_.grid(), c = config_.in_chans;
  SPARSESCOPE_CHECK(images.dim() == 4 && images.size(1) == c && images.size(2) == config_.img_size &&
                        images.size(3) == config_.img_size,
                    "MAE: expected images [B, ", c, ", ", config_.img_size, ", ", config_.img_size, "], got ",
                    images.sizes());
  // nchpwq -> nhwpqc
  return images.reshape({images.size(0), c, g, p, g, p}).permute({0, 2, 4, 3, 5, 1}).reshape({images.size(0), g * g, p * p * c});
}

at::Tensor MaskedAutoencoderImpl::unpatchify(const at::Tensor& patches) const {
  const int64_t p = config_.patch_size, g = config_.grid(), c = config_.in_chans;
  return patches.reshape({patches.size(0), g, g, p, p, c}).permute({0, 5, 1, 3, 2, 4}).reshape({patches.size(0), c, g * p, g * p});
}

at::Tensor MaskedAutoencoderImpl::forward_encoder(const at::Tensor& images, const at::Tensor& ids_keep, ProbeSet* probes) {
  at::Tensor x = patch_embed_->forward(images).flatten(2).transpose(1, 2);  // [B, L, D]
  x = x + pos_embed_.narrow(1, 1, config_.num_patches());
  if (ids_keep.defined()) x = x.gather(1, ids_keep.unsqueeze(-1).expand({-1, -1, x.size(2)}));
  const at::Tensor cls = (cls_token_ + pos_embed_.narrow(1, 0, 1)).expand({x.size(0), -1, -1});
  x = at::cat({cls, x}, 1);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    x = blocks_[i]->forward(x, probe_for(probes, "blocks." + std::to_string(i) + ".attn"));
  }
  return norm_->forward(x);
}

at::Tensor MaskedAutoencoderImpl::forward_decoder(const at::Tensor& latent, const at::Tensor& ids_restore,
                                                  ProbeSet* probes) {
  at::Tensor x = decoder_embed_->forward(latent);
  const int64_t B = x.size(0), L = ids_restore.size(1), D = x.size(2);
  const at::Tensor mask_tokens = mask_token_.expand({B, L + 1 - x.size(1), D});
  at::Tensor rest = at::cat({x.narrow(1, 1, x.size(1) - 1), mask_tokens}, 1);
  rest = rest.gather(1, ids_restore.unsqueeze(-1).expand({-1, -1, D}));  // unshuffle
  x = at::cat({x.narrow(1, 0, 1), rest}, 1) + decoder_pos_embed_;
  for (size_t i = 0; i < decoder_blocks_.size(); ++i) {
    x = decoder_blocks_[i]->forward(x, probe_for(probes, "decoder_blocks." + std::to_string(i) + ".attn"));
  }
  x = decoder_pred_->forward(decoder_norm_->forward(x));
  return x.narrow(1, 1, L);
}

at::Tensor MaskedAutoencoderImpl::forward_loss(const at::Tensor& images, const at::Tensor& pred,
                                               const at::Tensor& mask) const {
  at::Tensor target = patchify(images);
  if (config_.norm_pix_loss) {
    const at::Tensor mean = target.mean(-1, true);
    const at::Tensor var = target.var(-1, /*unbiased=*/true, true);
    target = (target - mean) / (var + 1e-6).sqrt();
  }
  const at::Tensor per_patch = (pred - target).square().mean(-1);  // [B, L]
  return (per_patch * mask).sum() / mask.sum();
}

MaskedAutoencoderImpl::Output MaskedAutoencoderImpl::forward(const at::Tensor& images, const at::Tensor& noise,
                                                             double mask_ratio, ProbeSet* probes) {
  Output o;
  o.masking = random_masking(noise, config_.visible(mask_ratio));
  const at::Tensor latent = forward_encoder(images, o.masking.ids_keep, probes);
  o.pred = forward_decoder(latent, o.masking.ids_restore, probes);
  o.loss = forward_loss(images, o.pred, o.masking.mask);
  return o;
}

at::Tensor MaskedAutoencoderImpl::project(const at::Tensor& latent) {
  const at::Tensor pooled = latent.narrow(1, 1, latent.size(1) - 1).mean(1);
  return head_ ? head_->forward(pooled) : pooled;
}

at::Tensor MaskedAutoencoderImpl::predict(const at::Tensor& projection) {
  return predictor_ ? predictor_->forward(projection) : projection;
}

MaskedAutoencoderImpl::LutOutput MaskedAutoencoderImpl::forward_lut(const at::Tensor& view1, const at::Tensor& view2,
                                                                    const at::Tensor& noise, double mask_ratio) {
  LutOutput o;
  o.masking = lut_random_masking(noise, config_.visible(mask_ratio));
  const at::Tensor latent1 = forward_encoder(view1, o.masking.view1.ids_keep);
  const at::Tensor latent2 = forward_encoder(view2, o.masking.ids_keep2);
  o.pred = forward_decoder(latent1, o.masking.view1.ids_restore);
  o.mae_loss = forward_loss(view1, o.pred, o.masking.view1.mask);
  o.q = at::cat({predict(project(latent1)), predict(project(latent2))});
  return o;
}

at::Tensor MaskedAutoencoderImpl::forward_lut_teacher(const at::Tensor& view1, const at::Tensor& view2) {
  const at::NoGradGuard no_grad;
  return at::cat({project(forward_encoder(view1, {})), project(forward_encoder(view2, {}))});
}

at::Tensor lut_loss(const at::Tensor& student, const at::Tensor& teacher) {
  const auto s = student.chunk(2), t = teacher.detach().chunk(2);
  auto term = [](const at::Tensor& a, const at::Tensor& b) {
    const at::Tensor an = a / a.norm(2, -1, true).clamp_min(1e-12), bn = b / b.norm(2, -1, true).clamp_min(1e-12);
    return (2 - 2 * (an * bn).sum(-1)).mean();
  };
  // Each teacher view against the student's other view.
  return (term(s[1], t[0]) + term(s[0], t[1])) / 2;
}

}  // namespace sparsescope::vision
