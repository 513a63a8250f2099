#include "token_grid.h"

namespace sparsescope::viewer {

GridExtent grid_extent(const vision::TokenLayout& layout) {
  const auto& g = layout.grid;
  if (g.size() == 3) return {g[0], g[1], g[2]};
  if (g.size() == 2) return {1, g[0], g[1]};
  return {};
}

TokenPosition locate_token(const vision::TokenLayout& layout, int64_t query) {
  if (query < layout.prefix) return {};
  const GridExtent g = grid_extent(layout);
  const int64_t patch = query - layout.prefix;
  const int64_t per_frame = g.rows * g.cols;
  if (per_frame == 0) return {};
  return {false, patch / per_frame, (patch % per_frame) / g.cols, patch % g.cols};
}

int64_t patch_token(const vision::TokenLayout& layout, int64_t t, int64_t row, int64_t col) {
  const GridExtent g = grid_extent(layout);
  return layout.prefix + (t * g.rows + row) * g.cols + col;
}

std::string describe_token(const vision::TokenLayout& layout, int64_t query) {
  const TokenPosition p = locate_token(layout, query);
  if (p.prefix) return query == 0 ? "CLS" : "prefix " + std::to_string(query);
  std::string where = "patch (";
  if (grid_extent(layout).t > 1) where += std::to_string(p.t) + ", ";
  return where + std::to_string(p.row) + ", " + std::to_string(p.col) + ")";
}

}  // namespace sparsescope::viewer
