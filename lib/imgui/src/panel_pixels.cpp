#include "sparsescope/imgui/panel_pixels.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_maps.h"
#include "sparsescope/vision/overlay.h"

namespace sparsescope::imgui {

namespace {

void check_trace(const vision::Trace& trace) {
  SPARSESCOPE_CHECK(!trace.sites.empty(), "trace of '", trace.info.input, "' holds no attention site");
  const auto& grid = trace.info.layout.grid;
  SPARSESCOPE_CHECK(grid.size() == 3 && grid[0] == 1, "trace of '", trace.info.input,
                    "': the panel draws single images, but the trace's grid is ", at::IntArrayRef(grid));
}

// uint8 [h, w, 4] -> RgbaImage.
RgbaImage to_image(const at::Tensor& rgba) {
  const at::Tensor dense = rgba.contiguous();
  RgbaImage image{static_cast<int>(dense.size(1)), static_cast<int>(dense.size(0)),
                  std::vector<std::uint8_t>(dense.numel())};
  std::memcpy(image.pixels.data(), dense.data_ptr<std::uint8_t>(), image.pixels.size());
  return image;
}

// The selected map of the grid tokens, float32 [gh, gw].
at::Tensor selected_map(const vision::Trace& trace, const Selection& selection) {
  if (selection.kind == MapKind::Rollout) return vision::rollout(trace, selection.query)[0];
  const at::Tensor maps = vision::query_maps(trace.sites[selection.layer], trace.info.layout, selection.query);
  return selection.kind == MapKind::Head ? maps[selection.head][0] : maps.mean(0)[0];  // maps: [H, 1, gh, gw]
}

// Fills `tile` (uint8 [gh, gw, 4]) with `map` scaled from its minimum to its maximum, opaque.
void fill_tile(at::Tensor tile, const at::Tensor& map, vision::Colormap colormap) {
  tile.narrow(2, 0, 3).copy_(vision::apply_colormap(map, colormap, map.min().item<double>(), map.max().item<double>()));
  tile.select(2, 3).fill_(255);
}

}  // namespace

const char* to_string(MapKind kind) {
  switch (kind) {
    case MapKind::Head: return "head";
    case MapKind::MeanOfHeads: return "mean of heads";
    case MapKind::Rollout: return "rollout";
  }
  return "?";
}

void check_selection(const vision::Trace& trace, const Selection& selection) {
  check_trace(trace);
  const int layers = static_cast<int>(trace.sites.size());
  SPARSESCOPE_CHECK(selection.layer >= 0 && selection.layer < layers, "layer ", selection.layer,
                    " is out of range: the trace has ", layers, " layers (0 to ", layers - 1, ")");
  const auto& site = trace.sites[selection.layer];
  SPARSESCOPE_CHECK(selection.head >= 0 && selection.head < site.heads(), "head ", selection.head,
                    " is out of range: ", site.name, " has ", site.heads(), " heads (0 to ", site.heads() - 1, ")");
  SPARSESCOPE_CHECK(selection.query >= 0 && selection.query < site.queries, "query ", selection.query,
                    " is out of range: ", site.name, " has ", site.queries, " queries (0 to ", site.queries - 1, ")");
  SPARSESCOPE_CHECK(selection.opacity >= 0 && selection.opacity <= 1, "opacity ", selection.opacity,
                    " is outside [0, 1]");
  if (selection.kind == MapKind::Rollout) {
    for (const auto& s : trace.sites) {
      SPARSESCOPE_CHECK(s.pool == 1, "rollout needs full maps, but site ", s.name, " holds maps pooled ", s.pool,
                        "x", s.pool, " (record with a larger --record-budget)");
    }
  }
}

RgbaImage render_overlay(const vision::Trace& trace, const Selection& selection) {
  check_selection(trace, selection);
  vision::OverlayStyle style;
  style.colormap = selection.colormap;
  style.alpha = selection.opacity;
  const at::Tensor rgb = vision::map_over_image(selected_map(trace, selection), trace, style);
  return to_image(at::cat({rgb, at::full({rgb.size(0), rgb.size(1), 1}, 255, at::kByte)}, 2));
}

RgbaImage render_head_atlas(const vision::Trace& trace, int64_t query, vision::Colormap colormap) {
  check_trace(trace);
  const int64_t gh = trace.info.layout.grid[1], gw = trace.info.layout.grid[2];
  int64_t widest = 0;
  for (const auto& site : trace.sites) widest = std::max(widest, site.heads());
  const auto layers = static_cast<int64_t>(trace.sites.size());
  // Transparent where no map is.
  at::Tensor atlas = at::zeros({(layers + 1) * gh, (widest + 1) * gw, 4}, at::kByte);
  auto tile = [&](int64_t row, int64_t column) { return atlas.narrow(0, row * gh, gh).narrow(1, column * gw, gw); };
  for (int64_t l = 0; l < layers; ++l) {
    const at::Tensor maps = vision::query_maps(trace.sites[l], trace.info.layout, query);  // [H, 1, gh, gw]
    for (int64_t h = 0; h < maps.size(0); ++h) fill_tile(tile(l, h), maps[h][0], colormap);
    fill_tile(tile(l, widest), maps.mean(0)[0], colormap);
  }
  try {
    fill_tile(tile(layers, 0), vision::rollout(trace, query)[0], colormap);
  } catch (const sparsescope::Error&) {  // pooled maps: the tile stays empty, the overlay says why
  }
  return to_image(atlas);
}

int64_t patch_at(const vision::TokenLayout& layout, float u, float v) {
  SPARSESCOPE_CHECK(layout.grid.size() == 3, "patch_at: expected a grid [T, H, W], got ", at::IntArrayRef(layout.grid));
  const int64_t rows = layout.grid[1], cols = layout.grid[2];
  const auto cell = [](float f, int64_t n) {
    return std::clamp<int64_t>(static_cast<int64_t>(std::floor(f * static_cast<float>(n))), 0, n - 1);
  };
  return layout.prefix + cell(v, rows) * cols + cell(u, cols);
}

std::string describe_token(const vision::TokenLayout& layout, int64_t token) {
  if (token < layout.prefix) return token == 0 ? "CLS" : "prefix " + std::to_string(token);
  const int64_t patch = token - layout.prefix, cols = layout.grid.back();
  return "patch (" + std::to_string(patch / cols) + ", " + std::to_string(patch % cols) + ")";
}

}  // namespace sparsescope::imgui
