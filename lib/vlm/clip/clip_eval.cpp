#include "sparsescope/vlm/clip_eval.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/vit_input.h"

namespace sparsescope::vlm {

const std::vector<std::string>& cifar10_templates() {
  static const std::vector<std::string> templates = {
      "a photo of a {}.",           "a blurry photo of a {}.",         "a black and white photo of a {}.",
      "a low contrast photo of a {}.", "a high contrast photo of a {}.", "a bad photo of a {}.",
      "a good photo of a {}.",      "a photo of a small {}.",          "a photo of a big {}.",
      "a photo of the {}.",         "a blurry photo of the {}.",       "a black and white photo of the {}.",
      "a low contrast photo of the {}.", "a high contrast photo of the {}.", "a bad photo of the {}.",
      "a good photo of the {}.",    "a photo of the small {}.",        "a photo of the big {}.",
  };
  return templates;
}

const std::vector<std::string>& simple_imagenet_templates() {
  static const std::vector<std::string> templates = {
      "itap of a {}.",      "a bad photo of the {}.", "a origami {}.",           "a photo of the large {}.",
      "a {} in a video game.", "art of the {}.",      "a photo of the small {}.",
  };
  return templates;
}

std::string fill_template(const std::string& template_text, const std::string& name) {
  const auto at = template_text.find("{}");
  SPARSESCOPE_CHECK(at != std::string::npos, "prompt template '", template_text, "' has no {} for the class name");
  return template_text.substr(0, at) + name + template_text.substr(at + 2);
}

at::Tensor zero_shot_classifier(CLIP& model, const ClipTokenizer& tokenizer, const std::vector<std::string>& classnames,
                                const std::vector<std::string>& templates) {
  SPARSESCOPE_CHECK(!classnames.empty() && !templates.empty(), "zero-shot classifier: no class names or no templates");
  at::NoGradGuard no_grad;
  const auto device = model->logit_scale().device();
  std::vector<at::Tensor> columns;
  for (const auto& name : classnames) {  // one class a batch: open_clip batches 10, the result is the same
    std::vector<std::string> texts;
    for (const auto& t : templates) texts.push_back(fill_template(t, name));
    const at::Tensor mean = model->encode_text(tokenizer.tokenize(texts).to(device), /*normalize=*/true).mean(0);
    columns.push_back(mean / mean.norm());
  }
  return at::stack(columns, 1);
}

namespace {

RetrievalScores scores_of(const at::Tensor& similarity, const at::Tensor& positive) {  // [Q, C] each
  const at::Tensor best = similarity.masked_fill(positive.logical_not(), -INFINITY).amax(1, true);
  const at::Tensor ranks = (similarity > best).sum(1).to(at::kDouble) + 1;  // [Q]
  RetrievalScores s;
  const std::array<int, 3> ks = {1, 5, 10};
  for (size_t i = 0; i < ks.size(); ++i) s.recall[i] = 100.0 * (ranks <= ks[i]).to(at::kDouble).mean().item<double>();
  s.mean_rank = ranks.mean().item<double>();
  // The median of an even count is the mean of the two middle ranks.
  const at::Tensor sorted = std::get<0>(ranks.sort());
  const int64_t n = sorted.size(0);
  s.median_rank = 0.5 * (sorted[(n - 1) / 2].item<double>() + sorted[n / 2].item<double>());
  return s;
}

}  // namespace

RetrievalMetrics retrieval_metrics(const at::Tensor& similarity, const std::vector<int64_t>& caption_image) {
  SPARSESCOPE_CHECK(similarity.dim() == 2 && similarity.size(0) > 0 &&
                        similarity.size(1) == static_cast<int64_t>(caption_image.size()),
                    "retrieval: similarity ", similarity.sizes(), " does not match ", caption_image.size(), " captions");
  const int64_t images = similarity.size(0);
  for (const int64_t i : caption_image) {
    SPARSESCOPE_CHECK(i >= 0 && i < images, "retrieval: caption of image ", i, " but there are ", images, " images");
  }
  const at::Tensor owner = at::tensor(caption_image, at::kLong);
  const at::Tensor positive = owner.view({1, -1}) == at::arange(images, at::kLong).view({-1, 1});  // [I, T]
  const at::Tensor s = similarity.detach().to(at::kCPU, at::kDouble);
  const at::Tensor has_caption = positive.any(1);
  SPARSESCOPE_CHECK(has_caption.all().item<bool>(), "retrieval: image ", has_caption.logical_not().nonzero()[0].item<int64_t>(),
                    " has no caption");
  return {scores_of(s, positive), scores_of(s.t(), positive.t())};
}

at::Tensor clip_loss(const at::Tensor& image_features, const at::Tensor& text_features, const at::Tensor& logit_scale) {
  SPARSESCOPE_CHECK(image_features.dim() == 2 && image_features.sizes() == text_features.sizes(),
                    "CLIP loss: image features ", image_features.sizes(), " and text features ", text_features.sizes(),
                    " must both be [B, E]");
  const at::Tensor logits = logit_scale.exp() * at::matmul(image_features, text_features.t());
  const at::Tensor labels = at::arange(logits.size(0), logits.options().dtype(at::kLong));
  return 0.5 * (at::cross_entropy_loss(logits, labels) + at::cross_entropy_loss(logits.t(), labels));
}

at::Tensor clip_image_features(CLIP& model, const at::Tensor& pixels, int64_t batch) {
  SPARSESCOPE_CHECK(batch > 0, "CLIP image features: batch must be positive");
  at::NoGradGuard no_grad;
  const auto device = model->logit_scale().device();
  const vision::EvalTransform transform = clip_eval_transform(model->config());
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < pixels.size(0); i += batch) {
    const at::Tensor chunk = vision::normalize_pixels(pixels.slice(0, i, i + batch).to(device), transform);
    out.push_back(model->encode_image(chunk, true).to(at::kFloat));
  }
  return at::cat(out);
}

at::Tensor clip_text_features(CLIP& model, const at::Tensor& ids, int64_t batch) {
  SPARSESCOPE_CHECK(batch > 0, "CLIP text features: batch must be positive");
  at::NoGradGuard no_grad;
  const auto device = model->logit_scale().device();
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < ids.size(0); i += batch) {
    out.push_back(model->encode_text(ids.slice(0, i, i + batch).to(device), true).to(at::kFloat));
  }
  return at::cat(out);
}

RetrievalMetrics clip_retrieval(CLIP& model, const ClipTokenizer& tokenizer, const ImageTextPairs& pairs, int64_t batch) {
  const at::Tensor images = clip_image_features(model, pairs.images, batch);
  const at::Tensor texts =
      clip_text_features(model, tokenizer.tokenize(pairs.captions, model->config().context_length), batch);
  return retrieval_metrics(at::matmul(images, texts.t()), pairs.caption_image);
}

std::map<std::string, double> retrieval_metric_map(const RetrievalMetrics& r) {
  std::map<std::string, double> m;
  const std::array<const char*, 3> k = {"1", "5", "10"};
  for (size_t i = 0; i < k.size(); ++i) {
    m[std::string("i2t_r") + k[i]] = r.image_to_text.recall[i];
    m[std::string("t2i_r") + k[i]] = r.text_to_image.recall[i];
  }
  m["i2t_mean_rank"] = r.image_to_text.mean_rank;
  m["t2i_mean_rank"] = r.text_to_image.mean_rank;
  return m;
}

double clip_zero_shot_top1(CLIP& model, const ClipTokenizer& tokenizer, const at::Tensor& pixels, const at::Tensor& labels,
                           const std::vector<std::string>& classnames, const std::vector<std::string>& templates,
                           int64_t batch) {
  SPARSESCOPE_CHECK(pixels.size(0) == labels.size(0) && pixels.size(0) > 0, "zero-shot: ", pixels.size(0), " images but ",
                    labels.size(0), " labels");
  const at::Tensor classifier = zero_shot_classifier(model, tokenizer, classnames, templates).to(at::kFloat);
  const at::Tensor logits = at::matmul(clip_image_features(model, pixels, batch), classifier);
  return 100.0 * (logits.argmax(1).cpu() == labels.cpu()).to(at::kDouble).mean().item<double>();
}

}  // namespace sparsescope::vlm
