#pragma once
// Where a rendered map is brightest, for the viewer's pixel tests.
#include <QImage>

#include <cstdint>
#include <utility>

namespace sparsescope::test {

/// (row, col) of the cell of a rows x cols grid over `image` whose pixels are brightest on average.
inline std::pair<int64_t, int64_t> brightest_cell(const QImage& image, int rows, int cols) {
  double best = -1;
  std::pair<int64_t, int64_t> at{-1, -1};
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      double sum = 0;
      int n = 0;
      for (int y = r * image.height() / rows; y < (r + 1) * image.height() / rows; ++y)
        for (int x = c * image.width() / cols; x < (c + 1) * image.width() / cols; ++x, ++n)
          sum += qGray(image.pixel(x, y));
      if (sum / n > best) {
        best = sum / n;
        at = {r, c};
      }
    }
  }
  return at;
}

}  // namespace sparsescope::test
