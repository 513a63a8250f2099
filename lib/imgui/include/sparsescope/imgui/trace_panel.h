#pragma once
// An embeddable Dear ImGui panel for a recorded trace: the selected head's attention (or its layer's
// mean of heads, or the rollout) over the image (click a patch to make it the query) beside the
// layer x head grid of the same query's maps with a mean column and a rollout row (click a tile to
// select it), with layer, head, map, colormap and opacity controls, and the trace's prediction. Call draw() inside
// an ImGui window of your frame, with the OpenGL context current; it re-renders and uploads its two
// textures only when the selection changes.
#include <memory>
#include <string>

#include "sparsescope/imgui/panel_pixels.h"

namespace sparsescope::imgui {

/// An area in ImGui screen coordinates.
struct ScreenRect {
  float x = 0;
  float y = 0;
  float width = 0;
  float height = 0;
};

class TracePanel {
 public:
  /// Shows the last layer's head 0 for the class token. Throws sparsescope::Error when the trace has
  /// no sites or several frames.
  explicit TracePanel(std::shared_ptr<const vision::Trace> trace);
  ~TracePanel();  // deletes the textures: the OpenGL context must still be current
  TracePanel(const TracePanel&) = delete;
  TracePanel& operator=(const TracePanel&) = delete;

  void draw();

  const vision::Trace& trace() const { return *trace_; }
  const Selection& selection() const { return selection_; }
  /// Throws sparsescope::Error for a selection out of range (see check_selection).
  void select(const Selection& selection);
  /// Where the last draw() put the overlay, in ImGui screen coordinates (framebuffer pixels when
  /// io.DisplayFramebufferScale is 1).
  const ScreenRect& overlay_rect() const { return overlay_rect_; }

 private:
  class Texture;
  void draw_controls();
  void draw_overlay();
  void draw_head_grid();

  std::shared_ptr<const vision::Trace> trace_;
  Selection selection_;
  std::unique_ptr<Texture> overlay_;
  std::unique_ptr<Texture> atlas_;
  std::string error_;  // why the last render failed; shown in the panel
  ScreenRect overlay_rect_;
};

}  // namespace sparsescope::imgui
