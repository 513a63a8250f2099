#pragma once
// What CLIP is measured and trained by: zero-shot classifiers from prompt templates (open_clip's
// build_zero_shot_classifier), image<->text retrieval metrics (clip_benchmark's recall@K: a query
// counts when any of its positives is among its K best), and the symmetric InfoNCE loss (open_clip's
// ClipLoss on one device).
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sparsescope/vlm/clip.h"
#include "sparsescope/vlm/clip_data.h"
#include "sparsescope/vlm/clip_tokenizer.h"

namespace sparsescope::vlm {

/// OpenAI's 18 CIFAR-10 prompts (CLIP's data/prompts.md); "{}" stands for the class name.
const std::vector<std::string>& cifar10_templates();
/// open_clip's SIMPLE_IMAGENET_TEMPLATES (7 prompts).
const std::vector<std::string>& simple_imagenet_templates();
/// `template_text` with its first "{}" replaced by `name`; throws sparsescope::Error without one.
std::string fill_template(const std::string& template_text, const std::string& name);

/// Per class, the unit text features of every template averaged and renormalised: [embed_dim, C]
/// (open_clip's build_zero_shot_classifier). Runs under no_grad on the model's device.
at::Tensor zero_shot_classifier(CLIP& model, const ClipTokenizer& tokenizer, const std::vector<std::string>& classnames,
                                const std::vector<std::string>& templates);

/// Recall@1/5/10 in percent, and the mean and median rank of each query's best positive.
struct RetrievalScores {
  std::array<double, 3> recall{};  ///< R@1, R@5, R@10
  double mean_rank = 0;
  double median_rank = 0;
};
struct RetrievalMetrics {
  RetrievalScores image_to_text;  ///< each image queries the captions; its own captions are positives
  RetrievalScores text_to_image;  ///< each caption queries the images; its image is the positive
};

/// `similarity` [images, captions]; caption_image[t] is the image of caption t. A query's rank is 1
/// plus the candidates scoring strictly above its best positive (ties go to the positive); R@K is
/// the share of queries with rank <= K. Throws sparsescope::Error when the sizes disagree or an index is out of range.
RetrievalMetrics retrieval_metrics(const at::Tensor& similarity, const std::vector<int64_t>& caption_image);

/// Unit image features of uint8 pixels [N, 3, S, S] at the model's geometry (normalised as
/// clip_eval_transform), `batch` at a time on the model's device, under no_grad: float32 [N, E].
at::Tensor clip_image_features(CLIP& model, const at::Tensor& pixels, int64_t batch);
/// Unit text features of token ids [N, context], `batch` at a time: float32 [N, E].
at::Tensor clip_text_features(CLIP& model, const at::Tensor& ids, int64_t batch);
/// Retrieval between the images and captions of `pairs` (retrieval_metrics of the cosine similarities).
RetrievalMetrics clip_retrieval(CLIP& model, const ClipTokenizer& tokenizer, const ImageTextPairs& pairs, int64_t batch);
/// The metrics as the training log names them: i2t_r1/5/10, t2i_r1/5/10, i2t_mean_rank, t2i_mean_rank.
std::map<std::string, double> retrieval_metric_map(const RetrievalMetrics& metrics);
/// Zero-shot top-1 in percent of pixels [N, 3, S, S] with labels [N] (indices into `classnames`).
double clip_zero_shot_top1(CLIP& model, const ClipTokenizer& tokenizer, const at::Tensor& pixels, const at::Tensor& labels,
                           const std::vector<std::string>& classnames, const std::vector<std::string>& templates,
                           int64_t batch);

/// open_clip's ClipLoss: (CE(s I T^T, arange) + CE(s T I^T, arange)) / 2 on unit features [B, E]
/// with s = logit_scale.exp().
at::Tensor clip_loss(const at::Tensor& image_features, const at::Tensor& text_features, const at::Tensor& logit_scale);

}  // namespace sparsescope::vlm
