#pragma once
// DCLIP's teacher and losses as its official code (ChuckDanz/DCLIP, training/) computes them:
// PatchTextAggregation's trained part, one CrossModalAttention layer (text attends to the regions
// and the regions to the text, both from the original embeddings, each a post-norm residual of an
// nn.MultiheadAttention), and the parameter-free aggregation (softmax over each token's cosine
// to the mean, / 2) whose text and region results average into the teacher's embedding; the
// symmetric InfoNCE with a fixed temperature 0.05 and the cosine distillation loss.
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>
#include <string>

#include "sparsescope/vision/probe_set.h"

namespace sparsescope::vlm {

struct DclipTeacherConfig {
  int64_t embed_dim = 512;          ///< CLIP's joint embedding (upstream: ViT-B/16's 512)
  int64_t heads = 8;
  double aggregation_temperature = 2.0;
};

struct DclipTeacherOutput {
  at::Tensor text;     ///< [B, L, E] the text tokens after attending to the regions
  at::Tensor regions;  ///< [B, R, E] the regions after attending to the text
  at::Tensor global;   ///< [B, E] 0.5 aggregate(text) + 0.5 aggregate(regions), not normalised
};

class DclipTeacherImpl : public torch::nn::Module {
 public:
  /// Parameters as upstream names them: cross_modal_attention.{text_to_image, image_to_text}.{in_proj_weight,
  /// in_proj_bias, out_proj.*} and cross_modal_attention.{norm_text, norm_image}.*.
  explicit DclipTeacherImpl(DclipTeacherConfig config = {});
  /// text [B, L, E] (CLIP's projected token features), regions [B, R, E] (CLIP's image features of
  /// the region crops); text_valid [B, L] and region_valid [B, R] (bool, undefined = all) mark the
  /// real rows of padded batches. Sites "cross_modal_attention.text_to_image" and ".image_to_text".
  DclipTeacherOutput forward(const at::Tensor& text, const at::Tensor& regions, const at::Tensor& text_valid = {},
                             const at::Tensor& region_valid = {}, vision::ProbeSet* probes = nullptr);
  const DclipTeacherConfig& config() const { return config_; }

 private:
  DclipTeacherConfig config_;
  std::shared_ptr<torch::nn::Module> cross_;
};
TORCH_MODULE(DclipTeacher);

/// The card of a trained teacher (`sparsescope train --task dclip-teacher`): its config as JSON.
inline constexpr const char* kDclipTeacherCardKey = "sparsescope.dclip_teacher";
std::string dclip_teacher_config_json(const DclipTeacherConfig& config);
/// A trained teacher (CPU, float32, eval mode) from its weights and card; throws
/// sparsescope::Error naming the file when it has no card or the weights do not fit.
DclipTeacher load_dclip_teacher(const std::string& path);

/// Upstream's aggregation of x [B, L, E] over its valid rows (bool [B, L], undefined = all):
/// w = softmax(cos(x_l, mean_l x) / temperature), sum_l w_l x_l.
at::Tensor dclip_aggregate(const at::Tensor& x, const at::Tensor& valid = {}, double temperature = 2.0);
/// (CE(I T^T / t, arange) + CE(T I^T / t, arange)) / 2 on L2-normalised [B, E] features.
at::Tensor dclip_contrastive_loss(const at::Tensor& image, const at::Tensor& text, double temperature = 0.05);
/// mean(1 - cos(student, teacher)) over the batch.
at::Tensor dclip_cosine_loss(const at::Tensor& student, const at::Tensor& teacher);

}  // namespace sparsescope::vlm
