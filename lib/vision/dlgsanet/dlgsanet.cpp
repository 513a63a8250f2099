// DLGSANet as basicsr/archs/dlgsanet_arch.py builds it with the official options ('sparseedge' build
// blocks, GDFN feed-forwards, ReLU sparse attention, 'pixelshuffledirect'), module for module under
// the official parameter names. The published file calls an undefined `F.gelu`; the exact (erf)
// GELU it means is used here.
#include "sparsescope/vision/dlgsanet.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/pixelshuffle.h>

#include <cmath>
#include <vector>

#include "sparsescope/kernels/dynamic_conv.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/probe_set.h"

namespace sparsescope::vision {

namespace nn = torch::nn;

namespace {

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, bool bias, int64_t groups = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).padding(kernel / 2).bias(bias).groups(groups));
}

// LayerNorm 'WithBias' over the channels of every pixel (eps 1e-5), its parameters under body.
class ChannelNormImpl : public nn::Module {
 public:
  explicit ChannelNormImpl(int64_t dim) {
    auto body = register_module("body", std::make_shared<nn::Module>());
    weight_ = body->register_parameter("weight", at::ones({dim}));
    bias_ = body->register_parameter("bias", at::zeros({dim}));
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::layer_norm(x.permute({0, 2, 3, 1}), {x.size(1)}, weight_, bias_, 1e-5).permute({0, 3, 1, 2});
  }

 private:
  at::Tensor weight_, bias_;
};
TORCH_MODULE(ChannelNorm);

// GDFN: project_in to 2 x hidden, a depthwise 3 x 3, GELU(x1) * x2, project_out; no biases.
class GatedFeedForwardImpl : public nn::Module {
 public:
  GatedFeedForwardImpl(int64_t dim, double expansion) {
    const auto hidden = static_cast<int64_t>(static_cast<double>(dim) * expansion);
    project_in_ = register_module("project_in", conv(dim, 2 * hidden, 1, false));
    dwconv_ = register_module("dwconv", conv(2 * hidden, 2 * hidden, 3, false, 2 * hidden));
    project_out_ = register_module("project_out", conv(hidden, dim, 1, false));
  }
  at::Tensor forward(const at::Tensor& x) {
    const auto halves = dwconv_->forward(project_in_->forward(x)).chunk(2, 1);
    return project_out_->forward(at::gelu(halves[0]) * halves[1]);
  }

 private:
  nn::Conv2d project_in_{nullptr}, dwconv_{nullptr}, project_out_{nullptr};
};
TORCH_MODULE(GatedFeedForward);

// MHDLSA's dynamic convolution: conv0, per-pixel kernels predicted by the hypernetwork `conv`
// (conv1: 1 x 1 to dim / 4 and a depthwise k x k; conv2: 1 x 1 to k^2 per group), conv1.
class DynamicConvImpl : public nn::Module {
 public:
  explicit DynamicConvImpl(const DlgsaConfig& c) : groups_(c.dim / c.group_channels), k_(c.kernel_size) {
    const int64_t reduced = c.dim / 4;
    conv0_ = register_module("conv0", conv(c.dim, c.dim, 1, false));
    conv1_ = register_module("conv1", conv(c.dim, c.dim, 1, false));  // registered before `conv`, as upstream
    auto hyper = register_module("conv", std::make_shared<nn::Module>());
    predict_ = hyper->register_module("conv1", nn::Sequential(conv(c.dim, reduced, 1, true),
                                                              conv(reduced, reduced, c.kernel_size, true, reduced)));
    kernels_ = hyper->register_module("conv2", nn::Sequential(conv(reduced, k_ * k_ * groups_, 1, true)));
  }
  // `probes`: each group's kernel at every pixel, [B, G, H W, k k], as site `site`'s map.
  at::Tensor forward(const at::Tensor& x, ProbeSet* probes, const std::string& site) {
    const at::Tensor y = conv0_->forward(x);
    const at::Tensor weight = kernels_->forward(predict_->forward(y));  // [B, G k k, H, W]
    const int64_t B = y.size(0), H = y.size(2), W = y.size(3);
    if (probes) probes->map(site, MapKind::Kernel, weight.view({B, groups_, k_ * k_, H * W}).transpose(2, 3));
    return conv1_->forward(dynamic_depthwise_conv(y, weight.view({B, groups_, k_, k_, H, W})));
  }

 private:
  int64_t groups_, k_;
  nn::Conv2d conv0_{nullptr}, conv1_{nullptr};
  nn::Sequential predict_{nullptr}, kernels_{nullptr};
};
TORCH_MODULE(DynamicConv);

// SparseGSA: channel attention per head over L2-normalised q and k with a learnt temperature and
// ReLU in place of softmax; in eval mode with TLC, over overlapping windows of the qkv maps.
class SparseAttentionImpl : public nn::Module {
 public:
  explicit SparseAttentionImpl(const DlgsaConfig& c) : heads_(c.attention_heads), tlc_(c.tlc), tlc_kernel_(c.tlc_kernel) {
    temperature_ = register_parameter("temperature", at::ones({heads_, 1, 1}));
    qkv_ = register_module("qkv", conv(c.dim, 3 * c.dim, 1, false));
    qkv_dwconv_ = register_module("qkv_dwconv", conv(3 * c.dim, 3 * c.dim, 3, false, 3 * c.dim));
    project_out_ = register_module("project_out", conv(c.dim, c.dim, 1, false));
  }
  // `probes`: each head's channel x channel weights after the ReLU, [B, heads, C / heads, C / heads]
  // (with TLC, their mean over the windows), as site `site`'s map.
  at::Tensor forward(const at::Tensor& x, ProbeSet* probes, const std::string& site) {
    const at::Tensor qkv = qkv_dwconv_->forward(qkv_->forward(x));
    const bool windows = !is_training() && tlc_ && (x.size(2) > tlc_kernel_ || x.size(3) > tlc_kernel_);
    at::Tensor weights;
    const at::Tensor out = windows ? attend_windows(qkv, probes ? &weights : nullptr) : attend(qkv, probes ? &weights : nullptr);
    if (probes) probes->map(site, MapKind::Channel, weights);
    return project_out_->forward(out);
  }

 private:
  // Sets `*weights`, when given, to the ReLU'd attention weights.
  at::Tensor attend(const at::Tensor& qkv, at::Tensor* weights) const {
    const int64_t B = qkv.size(0), C = qkv.size(1) / 3, H = qkv.size(2), W = qkv.size(3);
    const auto parts = qkv.chunk(3, 1);
    auto heads = [&](const at::Tensor& t) { return t.reshape({B, heads_, C / heads_, H * W}); };
    // F.normalize over the tokens: x / max(|x|, 1e-12).
    auto normalize = [](const at::Tensor& t) { return t / at::linalg_vector_norm(t, 2, {-1}, true).clamp_min(1e-12); };
    const at::Tensor q = normalize(heads(parts[0])), k = normalize(heads(parts[1]));
    const at::Tensor attn = at::relu(at::matmul(q, k.transpose(-2, -1)) * temperature_);
    if (weights) *weights = attn.detach();
    return at::matmul(attn, heads(parts[2])).reshape({B, C, H, W});
  }

  // megvii's TLC (grids / grids_inverse): windows of min(side, kernel) pixels, attended alone (as
  // one batch, windows outer), summed back and divided by how many windows cover each pixel. The
  // sum runs a row of windows at a time along the width, then along the height: n_rows + n_cols
  // slice additions instead of one a window, in a fixed order (deterministic).
  at::Tensor attend_windows(const at::Tensor& qkv, at::Tensor* weights) const {
    const int64_t B = qkv.size(0), C = qkv.size(1) / 3, H = qkv.size(2), W = qkv.size(3);
    const int64_t kh = std::min(H, tlc_kernel_), kw = std::min(W, tlc_kernel_);
    const std::vector<int64_t> rows = tlc_starts(H, kh), cols = tlc_starts(W, kw);
    const auto nr = static_cast<int64_t>(rows.size()), nc = static_cast<int64_t>(cols.size());
    std::vector<at::Tensor> parts;
    for (const int64_t i : rows) {
      for (const int64_t j : cols) parts.push_back(qkv.narrow(2, i, kh).narrow(3, j, kw));
    }
    at::Tensor attn;
    const at::Tensor out = attend(at::cat(parts, 0), weights ? &attn : nullptr).view({nr, nc, B, C, kh, kw});
    if (weights) *weights = attn.view({nr * nc, B, heads_, C / heads_, C / heads_}).mean(0);
    at::Tensor along_w = at::zeros({nr, B, C, kh, W}, qkv.options());
    at::Tensor count_w = at::zeros({W}, qkv.options());
    for (int64_t j = 0; j < nc; ++j) {
      along_w.narrow(4, cols[j], kw).add_(out.select(1, j));
      count_w.narrow(0, cols[j], kw).add_(1);
    }
    at::Tensor sum = at::zeros({B, C, H, W}, qkv.options());
    at::Tensor count_h = at::zeros({H, 1}, qkv.options());
    for (int64_t i = 0; i < nr; ++i) {
      sum.narrow(2, rows[i], kh).add_(along_w.select(0, i));
      count_h.narrow(0, rows[i], kh).add_(1);
    }
    return sum / (count_h * count_w);
  }

  int64_t heads_;
  bool tlc_;
  int64_t tlc_kernel_;
  at::Tensor temperature_;
  nn::Conv2d qkv_{nullptr}, qkv_dwconv_{nullptr}, project_out_{nullptr};
};
TORCH_MODULE(SparseAttention);

// One 'sparseedge' pair: the dynamic local block (norm1, IDynamicDWConv, norm2, IDynamic_ffn) or
// the sparse global block (norm3, restormer_attn, norm4, restormer_ffn), pre-norm residuals.
class LayerBlockImpl : public nn::Module {
 public:
  LayerBlockImpl(const DlgsaConfig& c, bool global, std::string site) : global_(global), site_(std::move(site)) {
    norm_a_ = register_module(global ? "norm3" : "norm1", ChannelNorm(c.dim));
    if (global) {
      attention_ = register_module("restormer_attn", SparseAttention(c));
    } else {
      dynamic_ = register_module("IDynamicDWConv", DynamicConv(c));
    }
    norm_b_ = register_module(global ? "norm4" : "norm2", ChannelNorm(c.dim));
    ffn_ = register_module(global ? "restormer_ffn" : "IDynamic_ffn", GatedFeedForward(c.dim, c.ffn_expansion));
  }
  at::Tensor forward(const at::Tensor& x, ProbeSet* probes) {
    const at::Tensor n = norm_a_->forward(x);
    const at::Tensor h = x + (global_ ? attention_->forward(n, probes, site_) : dynamic_->forward(n, probes, site_));
    return h + ffn_->forward(norm_b_->forward(h));
  }

 private:
  bool global_;
  std::string site_;  // the attention module's name in the network
  ChannelNorm norm_a_{nullptr}, norm_b_{nullptr};
  SparseAttention attention_{nullptr};
  DynamicConv dynamic_{nullptr};
  GatedFeedForward ffn_{nullptr};
};
TORCH_MODULE(LayerBlock);

// BuildBlock 'sparseedge': body = blocks x (local, global) pairs and a 3 x 3 conv, plus the input.
class BuildBlockImpl : public nn::Module {
 public:
  BuildBlockImpl(const DlgsaConfig& c, const std::string& prefix) {
    body_ = register_module("body", nn::ModuleList());
    for (int64_t i = 0; i < 2 * c.blocks; ++i) {
      const bool global = i % 2 == 1;
      const std::string site = prefix + "body." + std::to_string(i) + (global ? ".restormer_attn" : ".IDynamicDWConv");
      body_->push_back(LayerBlock(c, global, site));
    }
    body_->push_back(conv(c.dim, c.dim, 3, true));
  }
  at::Tensor forward(const at::Tensor& x, ProbeSet* probes) {
    at::Tensor h = x;
    for (size_t i = 0; i + 1 < body_->size(); ++i) h = body_[i]->as<LayerBlock>()->forward(h, probes);
    return body_[body_->size() - 1]->as<nn::Conv2d>()->forward(h) + x;
  }

 private:
  nn::ModuleList body_{nullptr};
};
TORCH_MODULE(BuildBlock);

}  // namespace

std::vector<int64_t> tlc_starts(int64_t n, int64_t kernel) {
  SPARSESCOPE_CHECK(n >= 1 && kernel >= 1 && kernel <= n, "tlc_starts: window ", kernel, " on ", n, " pixels");
  const int64_t count = (n - 1) / kernel + 1;
  const int64_t step = count == 1 ? kernel
                                  : static_cast<int64_t>(std::ceil(static_cast<double>(n - kernel) /
                                                                       static_cast<double>(count - 1) - 1e-8));
  std::vector<int64_t> starts;
  for (int64_t i = 0;; i += step) {
    if (i + kernel >= n) {
      starts.push_back(n - kernel);
      return starts;
    }
    starts.push_back(i);
  }
}

DLGSANetImpl::DLGSANetImpl(DlgsaConfig config) : config_(std::move(config)) {
  const auto& c = config_;
  SPARSESCOPE_CHECK(c.dim % c.group_channels == 0 && c.dim % c.attention_heads == 0 && c.scale >= 1 && c.groups >= 1 &&
                        c.blocks >= 1 && c.kernel_size % 2 == 1 && c.tlc_kernel >= 1,
                    "dlgsanet ", c.name, ": impossible configuration (dim ", c.dim, ", group channels ",
                    c.group_channels, ", heads ", c.attention_heads, ", kernel ", c.kernel_size, ")");
  auto overlap = register_module("overlap_embed", std::make_shared<nn::Module>());
  embed_ = overlap->register_module("0", std::make_shared<nn::Module>())->register_module("proj", conv(3, c.dim, 3, false));
  groups_ = register_module("deep_feature_extraction", nn::ModuleList());
  for (int64_t g = 0; g < c.groups; ++g) {
    groups_->push_back(BuildBlock(c, "deep_feature_extraction." + std::to_string(g) + "."));
  }
  body_conv_ = conv(c.dim, c.dim, 3, true);
  groups_->push_back(body_conv_);
  auto upsample = register_module("upsample", std::make_shared<nn::Module>());
  upsample_ = upsample->register_module("0", conv(c.dim, 3 * c.scale * c.scale, 3, true));
}

at::Tensor DLGSANetImpl::forward(const at::Tensor& lr, ProbeSet* probes) {
  const auto& c = config_;
  SPARSESCOPE_CHECK(lr.dim() == 4 && lr.size(1) == 3, c.name, ": expected images [B, 3, H, W], got ", lr.sizes());
  // Made in double and converted: at::tensor cannot make a bfloat16 (or float16) tensor from doubles.
  const at::Tensor mean =
      at::tensor(std::vector<double>(c.mean.begin(), c.mean.end()), at::kDouble).to(lr.options()).view({1, 3, 1, 1});
  const at::Tensor x = (lr - mean) * c.img_range;
  const at::Tensor f0 = embed_->forward(x);
  at::Tensor f = f0;
  for (int64_t g = 0; g < c.groups; ++g) f = groups_[static_cast<size_t>(g)]->as<BuildBlock>()->forward(f, probes);
  f = body_conv_->forward(f) + f0;
  return at::pixel_shuffle(upsample_->forward(f), c.scale) / c.img_range + mean;
}

}  // namespace sparsescope::vision
