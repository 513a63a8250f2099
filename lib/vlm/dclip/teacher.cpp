// DCLIP's teacher (training/patch_text_aggregation.py: CrossModalAttention, aggregation,
// compute_global_embedding_batch) and losses (training/CLIP_image_distillation.py,
// train_contrastive_teacher.py). Where upstream pads a batch with zero rows that attention and the
// mean then see, this masks them: equal to upstream for unpadded inputs.
#include "sparsescope/vlm/dclip.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/normalization.h>

#include "../clip/multihead_attention.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vlm {

namespace nn = torch::nn;

namespace {

// F.normalize(f, dim=1): f / max(||f||, 1e-12).
at::Tensor unit(const at::Tensor& f) { return f / at::linalg_vector_norm(f, 2, {1}, true).clamp_min(1e-12); }

class CrossModalAttentionImpl : public nn::Module {
 public:
  CrossModalAttentionImpl(int64_t width, int64_t heads) {
    text_to_image_ = register_module("text_to_image", MultiheadAttention(width, heads));
    image_to_text_ = register_module("image_to_text", MultiheadAttention(width, heads));
    norm_text_ = register_module("norm_text", nn::LayerNorm(nn::LayerNormOptions({width}).eps(1e-5)));
    norm_image_ = register_module("norm_image", nn::LayerNorm(nn::LayerNormOptions({width}).eps(1e-5)));
  }
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& text, const at::Tensor& regions, const at::Tensor& text_valid,
                                            const at::Tensor& region_valid, vision::ProbeSet* probes) {
    const at::Tensor t = text_to_image_->forward(text, regions, regions, false, region_valid,
                                                 vision::probe_for(probes, "cross_modal_attention.text_to_image"));
    const at::Tensor i = image_to_text_->forward(regions, text, text, false, text_valid,
                                                 vision::probe_for(probes, "cross_modal_attention.image_to_text"));
    return {norm_text_->forward(text + t), norm_image_->forward(regions + i)};
  }

 private:
  MultiheadAttention text_to_image_{nullptr}, image_to_text_{nullptr};
  nn::LayerNorm norm_text_{nullptr}, norm_image_{nullptr};
};

void check_features(const at::Tensor& x, const at::Tensor& valid, int64_t width, const char* what) {
  SPARSESCOPE_CHECK(x.dim() == 3 && x.size(2) == width && x.size(1) > 0, "DCLIP teacher: ", what, " must be [B, L, ",
                    width, "], got ", x.sizes());
  SPARSESCOPE_CHECK(!valid.defined() || (valid.scalar_type() == at::kBool && valid.sizes() == x.sizes().slice(0, 2)),
                    "DCLIP teacher: the valid rows of ", what, " must be bool [B, L] = ", x.sizes().slice(0, 2));
}

}  // namespace

DclipTeacherImpl::DclipTeacherImpl(DclipTeacherConfig config) : config_(config) {
  cross_ = register_module("cross_modal_attention", std::make_shared<CrossModalAttentionImpl>(config.embed_dim, config.heads));
}

DclipTeacherOutput DclipTeacherImpl::forward(const at::Tensor& text, const at::Tensor& regions, const at::Tensor& text_valid,
                                             const at::Tensor& region_valid, vision::ProbeSet* probes) {
  check_features(text, text_valid, config_.embed_dim, "text");
  check_features(regions, region_valid, config_.embed_dim, "regions");
  SPARSESCOPE_CHECK(text.size(0) == regions.size(0), "DCLIP teacher: ", text.size(0), " texts but ", regions.size(0),
                    " region sets");
  auto [t, r] = static_cast<CrossModalAttentionImpl&>(*cross_).forward(text, regions, text_valid, region_valid, probes);
  const double temp = config_.aggregation_temperature;
  at::Tensor global = 0.5 * dclip_aggregate(t, text_valid, temp) + 0.5 * dclip_aggregate(r, region_valid, temp);
  return {t, r, global};
}

at::Tensor dclip_aggregate(const at::Tensor& x, const at::Tensor& valid, double temperature) {
  SPARSESCOPE_CHECK(x.dim() == 3, "DCLIP aggregation: expected [B, L, E], got ", x.sizes());
  if (!valid.defined()) {
    const at::Tensor mean = x.mean(1, true);
    const at::Tensor weights = at::softmax(at::cosine_similarity(x, mean.expand_as(x), 2) / temperature, 1);
    return (x * weights.unsqueeze(-1)).sum(1);
  }
  SPARSESCOPE_CHECK(valid.any(1).all().item<bool>(), "DCLIP aggregation: a sequence without a valid row (give an image "
                    "without regions one zero region, as upstream does)");
  const at::Tensor keep = valid.unsqueeze(-1).to(x.scalar_type());
  const at::Tensor mean = (x * keep).sum(1, true) / keep.sum(1, true).clamp_min(1);
  const at::Tensor s = (at::cosine_similarity(x, mean.expand_as(x), 2) / temperature).masked_fill(valid.logical_not(), -INFINITY);
  return (x * at::softmax(s, 1).unsqueeze(-1)).sum(1);
}

at::Tensor dclip_contrastive_loss(const at::Tensor& image, const at::Tensor& text, double temperature) {
  SPARSESCOPE_CHECK(image.dim() == 2 && image.sizes() == text.sizes(), "DCLIP contrastive loss: image ", image.sizes(),
                    " and text ", text.sizes(), " must both be [B, E]");
  const at::Tensor logits = at::matmul(unit(image), unit(text).t()) / temperature;
  const at::Tensor labels = at::arange(logits.size(0), logits.options().dtype(at::kLong));
  return 0.5 * (at::cross_entropy_loss(logits, labels) + at::cross_entropy_loss(logits.t(), labels));
}

at::Tensor dclip_cosine_loss(const at::Tensor& student, const at::Tensor& teacher) {
  SPARSESCOPE_CHECK(student.dim() == 2 && student.sizes() == teacher.sizes(), "DCLIP cosine loss: student ",
                    student.sizes(), " and teacher ", teacher.sizes(), " must both be [B, E]");
  return (1.0 - (unit(student) * unit(teacher)).sum(1)).mean();
}

}  // namespace sparsescope::vlm
