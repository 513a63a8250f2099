#pragma once
// A classifier's most probable classes for one input: what `sparsescope infer` prints and writes to
// predictions.jsonl, what a trace stores (TraceInfo::topk) and what the viewer shows.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace sparsescope::vision {

struct ClassScore {
  int64_t index = 0;  ///< class index
  float score = 0;    ///< softmax probability
  std::string label;  ///< class name; empty when the model names no classes
};

/// Per row of `logits` [B, C]: the min(k, C) most probable classes, best first, named by `labels`
/// (empty, or one name per class). Throws sparsescope::Error for another shape or label count.
std::vector<std::vector<ClassScore>> top_classes(const at::Tensor& logits, int64_t k,
                                                 const std::vector<std::string>& labels);

/// "Ankle boot 97.1 %, Sandal 1.5 %, ..." for the first `count` entries ("class 9" when unnamed).
std::string describe(const std::vector<ClassScore>& top, std::size_t count = 3);

/// {"class", "score"} and "label" when named: the entries of predictions.jsonl and of traces.
void to_json(nlohmann::json& j, const ClassScore& c);

}  // namespace sparsescope::vision
