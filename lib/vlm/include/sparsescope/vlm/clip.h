#pragma once
// CLIP as open_clip builds it (src/open_clip/model.py, transformer.py), under its parameter names so
// that open_clip and OpenAI state dicts load unchanged. This step holds the text side: token and
// position embeddings, the causal transformer (attention through attend(), Dense causal), ln_final,
// the projection at the end-of-text token (the largest id), and logit_scale.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sparsescope::vlm {

struct ClipConfig {
  std::string name;
  int64_t embed_dim = 512;        ///< the joint embedding
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  int64_t text_width = 512;
  int64_t text_heads = 8;
  int64_t text_layers = 12;
  double text_mlp_ratio = 4.0;
  bool quick_gelu = false;        ///< OpenAI's x * sigmoid(1.702 x) ("-quickgelu" configurations)
};

/// open_clip's text configurations: "ViT-B-32", "ViT-B-16", "ViT-L-14" (and "-quickgelu" variants),
/// and "clip_tiny" (ours, for CIFAR-scale pretraining). Unknown names throw sparsescope::Error listing them.
ClipConfig clip_config(const std::string& name);
std::vector<std::string> clip_config_names();

class CLIPImpl : public torch::nn::Module {
 public:
  explicit CLIPImpl(ClipConfig config);
  /// Token ids [B, context_length] (ClipTokenizer::tokenize) -> text features [B, embed_dim],
  /// L2-normalised with `normalize` (open_clip's encode_text).
  at::Tensor encode_text(const at::Tensor& ids, bool normalize = false);
  const ClipConfig& config() const { return config_; }

 private:
  ClipConfig config_;
  torch::nn::Embedding token_embedding_{nullptr};
  at::Tensor positional_embedding_, text_projection_, logit_scale_;
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm ln_final_{nullptr};
};
TORCH_MODULE(CLIP);

}  // namespace sparsescope::vlm
