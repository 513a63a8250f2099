#include "eval_clip.h"

#include <ATen/ATen.h>

#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "batch.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/train_loop.h"
#include "sparsescope/vlm/clip_eval.h"
#include "sparsescope/vlm/clip_vocab.h"

namespace sparsescope::cli {

namespace {

nlohmann::json scores_json(const vlm::RetrievalScores& s) {
  return {{"r1", s.recall[0]}, {"r5", s.recall[1]}, {"r10", s.recall[2]}, {"mean_rank", s.mean_rank},
          {"median_rank", s.median_rank}};
}

}  // namespace

int run_clip_eval(const ClipEvalRequest& o) {
  SPARSESCOPE_CHECK(!o.weights.empty(), "--weights is required");
  const vlm::ClipTokenizer tokenizer(vlm::clip_vocab_path(o.vocab));
  vlm::CLIP model{nullptr};
  try {
    model = vlm::load_clip(o.weights, o.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--weights: ", e.what());
  }
  model->to(vision::training_device(o.device));
  const vision::EvalTransform geometry = vlm::clip_eval_transform(model->config());
  nlohmann::json summary = {{"model", model->config().name}, {"weights", printable(o.weights)}};
  nlohmann::json failures = nlohmann::json::array();
  if (!o.dataset.empty()) {
    vlm::ImageTextPairs pairs;
    try {
      pairs = vlm::load_image_text_pairs(o.dataset, geometry, o.limit);
    } catch (const Error& e) {
      SPARSESCOPE_FAIL("--dataset: ", e.what());
    }
    for (const auto& [file, reason] : pairs.failures) failures.push_back({{"input", file}, {"error", reason}});
    const vlm::RetrievalMetrics r = vlm::clip_retrieval(model, tokenizer, pairs, o.batch);
    summary["retrieval"] = {{"dataset", pairs.source},
                            {"images", pairs.image_files.size()},
                            {"captions", pairs.captions.size()},
                            {"image_to_text", scores_json(r.image_to_text)},
                            {"text_to_image", scores_json(r.text_to_image)}};
    if (!o.json) {
      std::cout << std::fixed << std::setprecision(1) << model->config().name << " on " << pairs.source << " ("
                << pairs.image_files.size() << " images, " << pairs.captions.size() << " captions)\n";
      for (const auto& [name, s] : {std::pair{"image->text", r.image_to_text}, std::pair{"text->image", r.text_to_image}}) {
        std::cout << "  " << name << "  R@1 " << s.recall[0] << "  R@5 " << s.recall[1] << "  R@10 " << s.recall[2]
                  << "  mean rank " << std::setprecision(2) << s.mean_rank << std::setprecision(1) << "\n";
      }
    }
  }
  if (!o.zero_shot.empty()) {
    vlm::ZeroShotSet set;
    try {
      set = vlm::load_zero_shot_set(o.zero_shot, geometry, o.limit);
    } catch (const Error& e) {
      SPARSESCOPE_FAIL("--dataset: ", e.what());
    }
    const vision::ImageDataset& data = set.data;
    const std::vector<std::string>& names = set.classnames;
    for (const auto& [file, reason] : data.failures) failures.push_back({{"input", file}, {"error", reason}});
    const double top1 =
        vlm::clip_zero_shot_top1(model, tokenizer, data.images, data.labels, names, vlm::cifar10_templates(), o.batch);
    summary["zero_shot"] = {{"dataset", data.source}, {"images", data.size()}, {"classes", names}, {"top1", top1}};
    if (!o.json) {
      std::cout << std::fixed << std::setprecision(2) << "  zero-shot top-1 " << top1 << "% on " << data.size()
                << " images of " << names.size() << " classes (" << data.source << ")\n";
    }
  }
  summary["failed"] = failures.size();
  summary["failures"] = failures;
  if (o.json) std::cout << summary.dump(2) << "\n";
  for (const auto& f : failures) std::cerr << "failed: " << f["input"].get<std::string>() << ": " << f["error"].get<std::string>() << "\n";
  return failures.empty() ? 0 : 1;
}

}  // namespace sparsescope::cli
