#pragma once
// CLIP as open_clip builds it (src/open_clip/model.py, transformer.py), under its parameter names so
// that open_clip and OpenAI state dicts load unchanged: the image tower (`visual.*`, a ViT with a
// class token), the causal text transformer, their projections and logit_scale. Every attention runs
// through attend() (Dense; causal in the text tower) and reports to the recorder's probes.
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparsescope/vision/eval_transform.h"
#include "sparsescope/vision/probe_set.h"

namespace sparsescope::vlm {

/// open_clip's OPENAI_DATASET_MEAN / OPENAI_DATASET_STD.
inline constexpr std::array<float, 3> kOpenAiMean = {0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr std::array<float, 3> kOpenAiStd = {0.26862954f, 0.26130258f, 0.27577711f};

struct ClipConfig {
  std::string name;
  int64_t embed_dim = 512;  ///< the joint embedding
  // The image tower (open_clip's vision_cfg; heads = width / head_width 64).
  int64_t image_size = 224;
  int64_t patch_size = 32;
  int64_t vision_width = 768;
  int64_t vision_heads = 12;
  int64_t vision_layers = 12;
  double vision_mlp_ratio = 4.0;
  // The text tower (text_cfg).
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  int64_t text_width = 512;
  int64_t text_heads = 8;
  int64_t text_layers = 12;
  double text_mlp_ratio = 4.0;
  bool quick_gelu = false;  ///< OpenAI's x * sigmoid(1.702 x) ("-quickgelu" configurations)
};

/// open_clip's configurations "ViT-B-32", "ViT-B-16", "ViT-L-14" (and their "-quickgelu" variants,
/// which OpenAI's weights need), and "clip_tiny" (ours, for pretraining on the data we have).
/// Unknown names throw sparsescope::Error listing them.
ClipConfig clip_config(const std::string& name);
std::vector<std::string> clip_config_names();

/// open_clip's eval preprocessing for `config`: shorter side to image_size (bicubic), center crop,
/// OpenAI mean and std.
vision::EvalTransform clip_eval_transform(const ClipConfig& config);

class ClipVisionImpl;       // clip/visual.h
class ClipTransformerImpl;  // clip/transformer.h

class CLIPImpl : public torch::nn::Module {
 public:
  explicit CLIPImpl(ClipConfig config);
  /// Normalised images [B, 3, S, S] (clip_eval_transform) -> image features [B, embed_dim],
  /// L2-normalised with `normalize` (open_clip's encode_image). Sites "visual.transformer.resblocks.<i>.attn".
  at::Tensor encode_image(const at::Tensor& images, bool normalize = false, vision::ProbeSet* probes = nullptr);
  /// Token ids [B, context_length] (ClipTokenizer::tokenize) -> text features [B, embed_dim]
  /// (open_clip's encode_text). Sites "transformer.resblocks.<i>.attn".
  at::Tensor encode_text(const at::Tensor& ids, bool normalize = false, vision::ProbeSet* probes = nullptr);
  /// The projected feature of every text position, ln_final(x) @ text_projection: [B, context, embed_dim]
  /// (what DCLIP's teacher takes per token; encode_text's is the one at the end-of-text token).
  at::Tensor text_token_features(const at::Tensor& ids, vision::ProbeSet* probes = nullptr);
  /// The learnt temperature's exponent: logits = logit_scale().exp() * image @ text^T on unit features.
  const at::Tensor& logit_scale() const { return logit_scale_; }
  const ClipConfig& config() const { return config_; }

 private:
  ClipConfig config_;
  std::shared_ptr<ClipVisionImpl> visual_;
  std::shared_ptr<ClipTransformerImpl> transformer_;
  torch::nn::Embedding token_embedding_{nullptr};
  at::Tensor positional_embedding_, text_projection_, logit_scale_;
  torch::nn::LayerNorm ln_final_{nullptr};
};
TORCH_MODULE(CLIP);

/// Loads an open_clip or OpenAI state dict (safetensors, or a torch.save `.pth`/`.bin`, fp16 and
/// bf16 cast to the model's dtype) into `model`: a DataParallel "module." prefix is stripped and
/// OpenAI's "input_resolution", "context_length" and "vocab_size" entries dropped, as open_clip's
/// load_checkpoint does. Missing, unexpected or mis-shaped names throw sparsescope::Error naming
/// the file; nothing is modified then.
void load_clip_weights(CLIP& model, const std::string& path);

/// The metadata key of our trained models' card: the ClipConfig as JSON.
inline constexpr const char* kClipCardKey = "sparsescope.clip";
std::string clip_config_json(const ClipConfig& config);
/// Throws sparsescope::Error naming `source` and the key that is missing or mistyped.
ClipConfig parse_clip_config_json(const std::string& json, const std::string& source);

/// The model of `weights` (CPU, float32, eval mode): the configuration named `name`, or with `name`
/// empty the one in the file's card (`sparsescope train --task clip` writes it; open_clip and
/// OpenAI files need `name`). Throws sparsescope::Error naming the file.
CLIP load_clip(const std::string& weights, const std::string& name = "");

}  // namespace sparsescope::vlm
