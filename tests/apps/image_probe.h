#pragma once
// Where a rendered map is brightest, for the viewer's pixel tests.
#include <QImage>

#include <cstdint>
#include <utility>

#include "brightest_cell.h"

namespace sparsescope::test {

/// (row, col) of the cell of a rows x cols grid over `image` whose pixels are brightest on average.
inline std::pair<int64_t, int64_t> brightest_cell(const QImage& image, int rows, int cols) {
  return brightest_cell(image.width(), image.height(), rows, cols,
                        [&](int x, int y) { return qGray(image.pixel(x, y)); });
}

}  // namespace sparsescope::test
