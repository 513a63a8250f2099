#include "sparsescope/vision/overlay.h"

#include <ATen/ATen.h>

#include <cmath>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_maps.h"
#include "sparsescope/vision/preprocess.h"

namespace sparsescope::vision {

namespace {

constexpr int64_t kPixelsPerPatch = 16;

Image grid_of(const std::vector<at::Tensor>& tiles, const OverlayStyle& style) {
  SPARSESCOPE_CHECK(style.columns >= 0 && style.gap >= 0, "overlay: columns ", style.columns, " and gap ", style.gap,
                    " must not be negative");
  const auto count = static_cast<int64_t>(tiles.size());
  const int64_t columns = std::min<int64_t>(
      count,
      style.columns > 0 ? style.columns : static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(count)))));
  const int64_t rows = (count + columns - 1) / columns;
  const int64_t h = tiles.front().size(0), w = tiles.front().size(1);
  at::Tensor canvas =
      at::full({rows * h + (rows - 1) * style.gap, columns * w + (columns - 1) * style.gap, 3}, 255, at::kByte);
  for (int64_t i = 0; i < count; ++i) {
    canvas.narrow(0, (i / columns) * (h + style.gap), h).narrow(1, (i % columns) * (w + style.gap), w).copy_(tiles[i]);
  }
  return tensor_to_image(canvas);
}

void check_single_frame(const Trace& trace) {
  const auto& grid = trace.info.layout.grid;
  SPARSESCOPE_CHECK(grid.size() == 3 && grid[0] == 1, "overlay: drawn for single images, but the trace's grid is ",
                    at::IntArrayRef(grid));
}

}  // namespace

at::Tensor map_over_image(const at::Tensor& map, const Trace& trace, const OverlayStyle& style) {
  const bool has_image = trace.image.defined();
  const int64_t height = has_image ? trace.image.size(0) : map.size(0) * kPixelsPerPatch;
  const int64_t width = has_image ? trace.image.size(1) : map.size(1) * kPixelsPerPatch;
  const at::Tensor up = upsample_maps(map, height, width);
  const at::Tensor colored = apply_colormap(up, style.colormap, up.min().item<double>(), up.max().item<double>());
  return has_image ? blend(trace.image, colored, style.alpha) : colored;
}

Image head_grid_overlay(const Trace& trace, const SiteTrace& site, int64_t query, const OverlayStyle& style) {
  check_single_frame(trace);
  const at::Tensor maps = query_maps(site, trace.info.layout, query);  // [H, 1, gh, gw]
  std::vector<at::Tensor> tiles;
  for (int64_t h = 0; h < maps.size(0); ++h) tiles.push_back(map_over_image(maps[h][0], trace, style));
  return grid_of(tiles, style);
}

Image rollout_overlay(const Trace& trace, int64_t query, const OverlayStyle& style) {
  check_single_frame(trace);
  return grid_of({map_over_image(rollout(trace, query)[0], trace, style)}, style);
}

}  // namespace sparsescope::vision
