#pragma once
// SparsifinerOptions <-> the JSON object that model cards and the registry store.
#include <string>

#include "sparsescope/vision/sparsifiner_options.h"

namespace sparsescope::vision {

/// {"keep_rate", "reduce_c", "reduce_n", "basis_threshold", "basis_topk"}.
std::string sparsifiner_options_to_json(const SparsifinerOptions& options);
/// Missing keys keep their defaults; throws sparsescope::Error naming a mistyped, unknown or
/// out-of-range key.
SparsifinerOptions sparsifiner_options_from_json(const std::string& json);

}  // namespace sparsescope::vision
