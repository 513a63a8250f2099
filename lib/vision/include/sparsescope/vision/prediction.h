#pragma once
// A classifier's most probable classes for one input: what `sparsescope infer` prints and writes to
// predictions.jsonl, what a trace stores (TraceInfo::topk) and what the viewer shows.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sparsescope/vision/trace_metadata.h"  // ClassScore

namespace sparsescope::vision {

/// Per row of `logits` [B, C]: the min(k, C) most probable classes, best first, named by `labels`
/// (empty, or one name per class). Throws sparsescope::Error for another shape or label count.
std::vector<std::vector<ClassScore>> top_classes(const at::Tensor& logits, int64_t k,
                                                 const std::vector<std::string>& labels);

/// "Ankle boot 97.1 %, Sandal 1.5 %, ..." for the first `count` entries ("class 9" when unnamed).
std::string describe(const std::vector<ClassScore>& top, std::size_t count = 3);

}  // namespace sparsescope::vision
