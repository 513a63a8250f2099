#include "sparsescope/vision/prediction.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

std::vector<std::vector<ClassScore>> top_classes(const at::Tensor& logits, int64_t k,
                                                 const std::vector<std::string>& labels) {
  SPARSESCOPE_CHECK(logits.dim() == 2 && logits.size(1) > 0, "logits must be [B, C] with C > 0, got ",
                    logits.sizes());
  const int64_t classes = logits.size(1);
  SPARSESCOPE_CHECK(labels.empty() || static_cast<int64_t>(labels.size()) == classes, labels.size(),
                    " class names for ", classes, " classes");
  SPARSESCOPE_CHECK(k >= 1, "top-k needs k >= 1, got ", k);
  const auto [scores, indices] = logits.to(at::kFloat).softmax(-1).topk(std::min(k, classes));
  const at::Tensor s = scores.cpu().contiguous(), c = indices.cpu().contiguous();
  std::vector<std::vector<ClassScore>> rows(static_cast<std::size_t>(logits.size(0)));
  for (int64_t i = 0; i < s.size(0); ++i) {
    for (int64_t j = 0; j < s.size(1); ++j) {
      const int64_t index = c[i][j].item<int64_t>();
      rows[i].push_back({index, s[i][j].item<float>(), labels.empty() ? std::string() : labels[index]});
    }
  }
  return rows;
}

std::string describe(const std::vector<ClassScore>& top, std::size_t count) {
  std::string text;
  for (std::size_t i = 0; i < std::min(count, top.size()); ++i) {
    char percent[32];
    std::snprintf(percent, sizeof percent, " %.1f %%", 100.0 * top[i].score);
    if (i) text += ", ";
    text += (top[i].label.empty() ? "class " + std::to_string(top[i].index) : top[i].label) + percent;
  }
  return text;
}

}  // namespace sparsescope::vision
