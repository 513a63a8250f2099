#pragma once
// What the ImGui panel shows, as RGBA pixels: plain functions without OpenGL or ImGui, so that they
// are tested without a window. The panel only uploads these buffers and draws them.
#include <cstdint>
#include <string>
#include <vector>

#include "sparsescope/vision/colormap.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::imgui {

/// Row-major RGBA, 4 bytes per pixel, no row padding (what glTexImage2D takes with GL_RGBA).
struct RgbaImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;
};

/// Which map the overlay shows: one head of the layer, the mean over the layer's heads, or the
/// attention rollout through every layer (Abnar & Zuidema 2020; needs full, unpooled maps).
enum class MapKind { Head, MeanOfHeads, Rollout };

/// "head", "mean of heads", "rollout".
const char* to_string(MapKind kind);

/// What the panel shows: the query's map of `kind` (head `head` of layer (site) `layer`, the mean of
/// that layer's heads, or the rollout) over the image.
struct Selection {
  int layer = 0;
  int head = 0;
  int64_t query = 0;  // token index; 0 is the class token of prefixed layouts
  MapKind kind = MapKind::Head;
  float opacity = 0.6f;
  vision::Colormap colormap = vision::Colormap::Viridis;

  bool operator==(const Selection& o) const {
    return layer == o.layer && head == o.head && query == o.query && kind == o.kind && opacity == o.opacity &&
           colormap == o.colormap;
  }
  bool operator!=(const Selection& o) const { return !(*this == o); }
};

/// Throws sparsescope::Error naming the value and its range when `selection` does not fit `trace`
/// (which needs at least one site and a single-frame grid).
void check_selection(const vision::Trace& trace, const Selection& selection);

/// The selected map drawn over the trace's image as vision::map_over_image draws it: the trace's
/// image size (16 pixels per patch without an image), opaque. Throws sparsescope::Error for a
/// rollout of a trace with pooled maps.
RgbaImage render_overlay(const vision::Trace& trace, const Selection& selection);

/// Every head of every layer for `query`, one pixel per patch, each map scaled from its own minimum
/// to its maximum: tile (layer, head) at x = head * gw, y = layer * gh, then each layer's mean of
/// heads in the column after the widest layer's heads (x = widest * gw) and the rollout in a row
/// of its own (x = 0, y = layers * gh). Layers with fewer heads than the widest leave their last
/// tiles transparent, and so does the rollout of a trace that cannot give one (pooled maps).
RgbaImage render_head_atlas(const vision::Trace& trace, int64_t query, vision::Colormap colormap);

/// The token of the patch under (u, v), the position in the overlay as fractions of its width and
/// height (clamped to the grid).
int64_t patch_at(const vision::TokenLayout& layout, float u, float v);

/// "CLS" for token 0 of a prefixed layout, "prefix 1" for later prefix tokens, else "patch (row, col)".
std::string describe_token(const vision::TokenLayout& layout, int64_t token);

}  // namespace sparsescope::imgui
