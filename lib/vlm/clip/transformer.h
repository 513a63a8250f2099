#pragma once
// open_clip's Transformer (transformer.py): `resblocks` of ResidualAttentionBlock, pre-norm,
// nn.MultiheadAttention's in_proj / out_proj, LayerNorm eps 1e-5, c_fc -> GELU or QuickGELU ->
// c_proj. Attention runs through attend() (Dense, causal for the text tower) with the site's probe.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>

#include "sparsescope/vision/probe_set.h"

namespace sparsescope::vlm {

struct TransformerShape {
  int64_t width = 0;
  int64_t heads = 0;
  int64_t layers = 0;
  double mlp_ratio = 4.0;
  bool quick_gelu = false;
  bool causal = false;
};

/// open_clip's Transformer: the module holding `resblocks`.
class ClipTransformerImpl : public torch::nn::Module {
 public:
  explicit ClipTransformerImpl(const TransformerShape& shape);
  /// x [B, N, width]; the probe of block i is probes->site(site_prefix + "resblocks.<i>.attn").
  at::Tensor forward(at::Tensor x, vision::ProbeSet* probes, const std::string& site_prefix);
  /// open_clip's TextTransformer.init_parameters for the blocks: in_proj N(0, w^-1/2), out_proj and
  /// c_proj N(0, w^-1/2 (2 layers)^-1/2), c_fc N(0, (2w)^-1/2).
  void init_text_blocks();
  const TransformerShape& shape() const { return shape_; }

 private:
  TransformerShape shape_;
  torch::nn::ModuleList blocks_{nullptr};
};

}  // namespace sparsescope::vlm
