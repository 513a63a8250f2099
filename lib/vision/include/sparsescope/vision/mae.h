#pragma once
// MAE (He et al., CVPR 2022: masked autoencoders) and MAE-LUT (Kim et al., 2024: learning with
// unmasked tokens): masked-image pretraining of a ViT encoder. The encoder runs on the visible
// patches only, so its attention cost follows the visible count; a light decoder fills in mask
// tokens and predicts the pixels of the masked patches. LUT adds a second view whose visible
// patches are disjoint from the first's, projector and predictor MLPs over the mean visible token,
// and an EMA teacher (lib/vision/mae/README.md). Parameter names as the official code
// (facebookresearch/mae models_mae.py, naver-ai/lut models_lut.py), so its checkpoints load; the
// encoder keeps timm's ViT names (mae_encoder_config) so that it fine-tunes as a VisionTransformer.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sparsescope/vision/probe_set.h"
#include "sparsescope/vision/vit_config.h"

namespace sparsescope::vision {

class ViTBlockImpl;

struct MaeConfig {
  std::string name;
  int64_t img_size = 224;
  int64_t patch_size = 16;
  int64_t in_chans = 3;
  int64_t embed_dim = 1024;
  int64_t depth = 24;
  int64_t num_heads = 16;
  int64_t decoder_embed_dim = 512;
  int64_t decoder_depth = 8;
  int64_t decoder_num_heads = 16;
  double mlp_ratio = 4.0;
  double norm_eps = 1e-6;
  bool norm_pix_loss = false;  ///< the loss compares patches normalised by their own mean and variance
  /// LUT's projector (`head`) and predictor MLPs: layers (0: none), hidden width, the norm between
  /// layers ("BN": BatchNorm1d, "LN": LayerNorm eps 1e-6, "": none) and the activation ("ReLU",
  /// "GELU"): main_lut.py's --head_norm_layer and --head_act_layer (recommended: BN, ReLU).
  int64_t depth_head = 0;
  int64_t depth_pred = 0;
  int64_t head_mlp_dim = 4096;
  std::string head_norm = "BN";
  std::string head_act = "ReLU";

  int64_t grid() const { return img_size / patch_size; }
  int64_t num_patches() const { return grid() * grid(); }
  /// Patches kept visible at `mask_ratio`: int(L * (1 - mask_ratio)), as the official code truncates.
  int64_t visible(double mask_ratio) const;
};

/// The official configurations: "mae_vit_{base,large,huge}_patch16" (MAE) and
/// "lut_vit_{small,medium,base,large}_patch16" (LUT, projector and predictor of 2 layers, 4096
/// wide); unknown names throw sparsescope::Error listing them.
MaeConfig mae_config(const std::string& name);
std::vector<std::string> mae_config_names();

/// The configuration as JSON (the model card of MAE weights under kMaeCardKey) and back; the reader
/// throws sparsescope::Error naming the key at fault.
inline constexpr const char* kMaeCardKey = "sparsescope.mae";
std::string mae_config_json(const MaeConfig& config);
MaeConfig mae_config_from_json(const std::string& json);

/// The encoder as a ViT without a head (timm's names: patch_embed, cls_token, pos_embed, blocks,
/// norm), for fine-tuning and linear probing from MAE weights. Its eval transform takes images at
/// the model's size (crop_pct 1: the shorter side resized to img_size, centre-cropped), so that
/// images of that size (CIFAR-10 at 32) load unchanged.
ViTConfig mae_encoder_config(const MaeConfig& config);

/// The fixed 2D sine-cosine position embedding of MAE's util/pos_embed.py with a zero row for the
/// class token first: [1 + grid^2, dim], float32 (computed in float64 as numpy does).
at::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid);

/// Per-sample random masking by argsort of `noise` [B, L] (models_mae.py random_masking): the
/// smallest noise is kept.
struct MaeMasking {
  at::Tensor ids_keep;     ///< int64 [B, K]: visible patches, in shuffled order
  at::Tensor mask;         ///< float [B, L]: 0 visible, 1 removed
  at::Tensor ids_restore;  ///< int64 [B, L]: the inverse of the shuffle
};
MaeMasking random_masking(const at::Tensor& noise, int64_t visible);

/// LUT's masking of two views (models_lut.py random_masking(x1, x2)): one shuffle; view 1 keeps its
/// first K patches, view 2 the next K, so that their visible sets are disjoint.
struct LutMasking {
  MaeMasking view1;
  at::Tensor ids_keep2;  ///< int64 [B, K]
  at::Tensor mask2;      ///< float [B, L]
};
LutMasking lut_random_masking(const at::Tensor& noise, int64_t visible);

class MaskedAutoencoderImpl : public torch::nn::Module {
 public:
  explicit MaskedAutoencoderImpl(const MaeConfig& config);

  const MaeConfig& config() const { return config_; }

  /// images [B, C, S, S] -> patches [B, L, p * p * C] (channels last within a patch).
  at::Tensor patchify(const at::Tensor& images) const;
  at::Tensor unpatchify(const at::Tensor& patches) const;

  /// The encoder over the patches `ids_keep` [B, K] (undefined: every patch), the class token
  /// first: [B, 1 + K, D], after the final norm. Attention sites "blocks.<i>.attn".
  at::Tensor forward_encoder(const at::Tensor& images, const at::Tensor& ids_keep, ProbeSet* probes = nullptr);
  /// latent [B, 1 + K, D] -> pixel predictions [B, L, p * p * C] for every patch, mask tokens
  /// unshuffled by `ids_restore` [B, L]. Attention sites "decoder_blocks.<i>.attn".
  at::Tensor forward_decoder(const at::Tensor& latent, const at::Tensor& ids_restore, ProbeSet* probes = nullptr);
  /// The mean squared error per patch, averaged over the removed patches (mask 1).
  at::Tensor forward_loss(const at::Tensor& images, const at::Tensor& pred, const at::Tensor& mask) const;

  struct Output {
    at::Tensor loss, pred;
    MaeMasking masking;
  };
  /// models_mae.py forward with the masking drawn from `noise` [B, L].
  Output forward(const at::Tensor& images, const at::Tensor& noise, double mask_ratio, ProbeSet* probes = nullptr);

  /// LUT: the projector over the mean of the patch tokens of latent [B, 1 + K, D] -> [B, D].
  at::Tensor project(const at::Tensor& latent);
  /// LUT: the predictor over projections [B, D] -> [B, D].
  at::Tensor predict(const at::Tensor& projection);

  /// initialize_weights of models_mae.py with `gen`: xavier-uniform Linear weights (the patch
  /// embedding's too, over its flattened kernel), zero biases, unit LayerNorms, class and mask
  /// tokens N(0, 0.02); the position embeddings stay the fixed sin-cos tables.
  void initialize(at::Generator& gen);

  /// models_lut.py forward (ema=False): the MAE loss of view 1 and predictor(head(...)) of both
  /// views' visible tokens, concatenated [2B, D].
  struct LutOutput {
    at::Tensor mae_loss, pred, q;
    LutMasking masking;
  };
  LutOutput forward_lut(const at::Tensor& view1, const at::Tensor& view2, const at::Tensor& noise, double mask_ratio);
  /// models_lut.py forward (ema=True), the teacher: head(...) of both whole views [2B, D], no grad.
  at::Tensor forward_lut_teacher(const at::Tensor& view1, const at::Tensor& view2);

 private:
  MaeConfig config_;
  torch::nn::Conv2d patch_embed_{nullptr};
  at::Tensor cls_token_, pos_embed_, mask_token_, decoder_pos_embed_;
  std::vector<std::shared_ptr<ViTBlockImpl>> blocks_, decoder_blocks_;
  torch::nn::LayerNorm norm_{nullptr}, decoder_norm_{nullptr};
  torch::nn::Linear decoder_embed_{nullptr}, decoder_pred_{nullptr};
  torch::nn::Sequential head_{nullptr}, predictor_{nullptr};
};
TORCH_MODULE(MaskedAutoencoder);

/// engine_lut.py's loss between the student's outputs and the (detached) teacher's, each [2B, D]
/// of two views: 2 - 2 cos between a student view and the teacher's other view, averaged.
at::Tensor lut_loss(const at::Tensor& student, const at::Tensor& teacher);

}  // namespace sparsescope::vision
