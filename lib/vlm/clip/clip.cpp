// open_clip's CLIP, text side: _encode_text and ResidualAttentionBlock (nn.MultiheadAttention's
// in_proj / out_proj, a causal mask, LayerNorm eps 1e-5, c_fc -> GELU or QuickGELU -> c_proj).
#include "sparsescope/vlm/clip.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/linear.h>

#include <cmath>
#include <map>

#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vlm {

namespace nn = torch::nn;

namespace {

class ResidualAttentionBlockImpl : public nn::Module {
 public:
  ResidualAttentionBlockImpl(int64_t width, int64_t heads, double mlp_ratio, bool quick_gelu)
      : heads_(heads), quick_gelu_(quick_gelu) {
    ln_1_ = register_module("ln_1", nn::LayerNorm(nn::LayerNormOptions({width}).eps(1e-5)));
    auto attn = register_module("attn", std::make_shared<nn::Module>());
    in_proj_weight_ = attn->register_parameter("in_proj_weight", at::empty({3 * width, width}));
    in_proj_bias_ = attn->register_parameter("in_proj_bias", at::zeros({3 * width}));
    out_proj_ = attn->register_module("out_proj", nn::Linear(width, width));
    ln_2_ = register_module("ln_2", nn::LayerNorm(nn::LayerNormOptions({width}).eps(1e-5)));
    const auto hidden = static_cast<int64_t>(static_cast<double>(width) * mlp_ratio);
    auto mlp = register_module("mlp", std::make_shared<nn::Module>());
    c_fc_ = mlp->register_module("c_fc", nn::Linear(width, hidden));
    c_proj_ = mlp->register_module("c_proj", nn::Linear(hidden, width));
    at::NoGradGuard no_grad;
    nn::init::xavier_uniform_(in_proj_weight_);  // nn.MultiheadAttention's reset
  }

  at::Tensor forward(const at::Tensor& x) {  // [B, N, W]
    const int64_t B = x.size(0), N = x.size(1), W = x.size(2), D = W / heads_;
    const at::Tensor qkv = at::linear(ln_1_->forward(x), in_proj_weight_, in_proj_bias_)
                               .view({B, N, 3, heads_, D})
                               .permute({2, 0, 3, 1, 4});  // [3, B, H, N, D]
    Dense causal;
    causal.causal = true;
    const at::Tensor a = attend(qkv[0], qkv[1], qkv[2], causal);
    const at::Tensor h = x + out_proj_->forward(a.transpose(1, 2).reshape({B, N, W}));
    at::Tensor m = c_fc_->forward(ln_2_->forward(h));
    m = quick_gelu_ ? m * at::sigmoid(1.702 * m) : at::gelu(m);
    return h + c_proj_->forward(m);
  }

 private:
  int64_t heads_;
  bool quick_gelu_;
  nn::LayerNorm ln_1_{nullptr}, ln_2_{nullptr};
  at::Tensor in_proj_weight_, in_proj_bias_;
  nn::Linear out_proj_{nullptr}, c_fc_{nullptr}, c_proj_{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

// open_clip's model_configs/*.json, text_cfg and embed_dim.
const std::map<std::string, ClipConfig>& configs() {
  static const std::map<std::string, ClipConfig> table = [] {
    std::map<std::string, ClipConfig> t;
    auto add = [&t](const std::string& name, int64_t embed, int64_t width, int64_t heads, int64_t layers) {
      ClipConfig c;
      c.name = name;
      c.embed_dim = embed;
      c.text_width = width;
      c.text_heads = heads;
      c.text_layers = layers;
      t[name] = c;
      c.name = name + "-quickgelu";
      c.quick_gelu = true;
      t[c.name] = c;
    };
    add("ViT-B-32", 512, 512, 8, 12);
    add("ViT-B-16", 512, 512, 8, 12);
    add("ViT-L-14", 768, 768, 12, 12);
    add("clip_tiny", 128, 128, 4, 4);
    return t;
  }();
  return table;
}

}  // namespace

std::vector<std::string> clip_config_names() {
  std::vector<std::string> names;
  for (const auto& [name, c] : configs()) names.push_back(name);
  return names;
}

ClipConfig clip_config(const std::string& name) {
  const auto it = configs().find(name);
  if (it != configs().end()) return it->second;
  std::string known;
  for (const auto& n : clip_config_names()) known += (known.empty() ? "" : ", ") + n;
  SPARSESCOPE_FAIL("unknown CLIP configuration '", name, "' (known: ", known, ")");
}

CLIPImpl::CLIPImpl(ClipConfig config) : config_(std::move(config)) {
  const ClipConfig& c = config_;
  SPARSESCOPE_CHECK(c.text_width % c.text_heads == 0 && c.context_length >= 2 && c.vocab_size > 0 && c.embed_dim > 0,
                    "CLIP ", c.name, ": impossible text configuration (width ", c.text_width, ", heads ", c.text_heads, ")");
  // open_clip's registration order: the visual tower first (not yet), then these.
  blocks_ = nn::ModuleList();
  auto transformer = std::make_shared<nn::Module>();
  transformer->register_module("resblocks", blocks_);
  for (int64_t i = 0; i < c.text_layers; ++i) {
    blocks_->push_back(ResidualAttentionBlock(c.text_width, c.text_heads, c.text_mlp_ratio, c.quick_gelu));
  }
  register_module("transformer", transformer);
  token_embedding_ = register_module("token_embedding", nn::Embedding(c.vocab_size, c.text_width));
  positional_embedding_ = register_parameter("positional_embedding", at::empty({c.context_length, c.text_width}));
  ln_final_ = register_module("ln_final", nn::LayerNorm(nn::LayerNormOptions({c.text_width}).eps(1e-5)));
  text_projection_ = register_parameter("text_projection", at::empty({c.text_width, c.embed_dim}));
  logit_scale_ = register_parameter("logit_scale", at::full({}, std::log(1.0 / 0.07)));
  // CLIP.init_parameters: embeddings N(0, 0.02) / N(0, 0.01), text_projection N(0, width^-0.5).
  at::NoGradGuard no_grad;
  token_embedding_->weight.normal_(0, 0.02);
  positional_embedding_.normal_(0, 0.01);
  text_projection_.normal_(0, std::pow(static_cast<double>(c.text_width), -0.5));
}

at::Tensor CLIPImpl::encode_text(const at::Tensor& ids, bool normalize) {
  const ClipConfig& c = config_;
  SPARSESCOPE_CHECK(ids.dim() == 2 && ids.size(1) == c.context_length && ids.scalar_type() == at::kLong, "CLIP ",
                    c.name, ": expected int64 token ids [B, ", c.context_length, "], got ", ids.scalar_type(), " ",
                    ids.sizes());
  at::Tensor x = token_embedding_->forward(ids) + positional_embedding_;
  for (const auto& block : *blocks_) x = block->as<ResidualAttentionBlock>()->forward(x);
  x = ln_final_->forward(x);
  const at::Tensor eot = ids.argmax(-1).view({-1, 1, 1}).expand({x.size(0), 1, x.size(2)});  // the end-of-text token
  const at::Tensor pooled = x.gather(1, eot).squeeze(1);
  const at::Tensor features = at::matmul(pooled, text_projection_);
  return normalize ? features / at::linalg_vector_norm(features, 2, {-1}, true).clamp_min(1e-12) : features;
}

}  // namespace sparsescope::vlm
