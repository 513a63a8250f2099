// A downstream ImGui app's use of the installed panel. The install test builds it, which links it
// against the app's ImGui; it does not run it: drawing needs a window and an OpenGL context.
#include <imgui.h>

#include <memory>

#include "sparsescope/imgui/trace_panel.h"

void draw_attention(sparsescope::imgui::TracePanel& panel) {
  ImGui::Begin("Attention");
  panel.draw();
  ImGui::End();
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  sparsescope::imgui::TracePanel panel(
      std::make_shared<const sparsescope::vision::Trace>(sparsescope::vision::load_trace(argv[1])));
  return panel.selection().query == 0 ? 0 : 1;
}
