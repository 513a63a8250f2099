#pragma once
// Where a rendered map is brightest, for pixel tests of any picture type (Qt-free).
#include <cstdint>
#include <utility>

namespace sparsescope::test {

/// (row, col) of the cell of a rows x cols grid over a width x height picture whose pixels are
/// brightest on average; gray(x, y) gives a pixel's brightness.
template <typename Gray>
std::pair<int64_t, int64_t> brightest_cell(int width, int height, int rows, int cols, Gray gray) {
  double best = -1;
  std::pair<int64_t, int64_t> at{-1, -1};
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      double sum = 0;
      int n = 0;
      for (int y = r * height / rows; y < (r + 1) * height / rows; ++y)
        for (int x = c * width / cols; x < (c + 1) * width / cols; ++x, ++n) sum += gray(x, y);
      if (sum / n > best) {
        best = sum / n;
        at = {r, c};
      }
    }
  }
  return at;
}

}  // namespace sparsescope::test
