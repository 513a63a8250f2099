#pragma once
// Where a token of a trace's sequence sits: a prefix token (class, distillation) or a patch at
// (t, row, col) of the grid. The views speak patches; traces and attention maps speak token indices.
#include <cstdint>
#include <string>

#include "sparsescope/vision/trace.h"

namespace sparsescope::viewer {

struct TokenPosition {
  bool prefix = true;  // a prefix token: t, row, col are 0
  int64_t t = 0;
  int64_t row = 0;
  int64_t col = 0;
};

/// The grid extents of `layout` as (T, H, W); a missing leading T counts as 1.
struct GridExtent {
  int64_t t = 1;
  int64_t rows = 0;
  int64_t cols = 0;
};
GridExtent grid_extent(const vision::TokenLayout& layout);

/// Position of token `query` (0 <= query < layout.tokens()).
TokenPosition locate_token(const vision::TokenLayout& layout, int64_t query);

/// Token index of the patch (t, row, col); no range checks beyond the caller's.
int64_t patch_token(const vision::TokenLayout& layout, int64_t t, int64_t row, int64_t col);

/// "CLS" for token 0 of a prefixed layout, "prefix 1" for later prefix tokens, else
/// "patch (row, col)", or "patch (t, row, col)" when the grid has several frames.
std::string describe_token(const vision::TokenLayout& layout, int64_t query);

}  // namespace sparsescope::viewer
