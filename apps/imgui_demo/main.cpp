// sparsescope-imgui-demo TRACE [--layer L --head H --query Q] [--map head|mean|rollout]
//                        [--colormap NAME] [--opacity A] [--screenshot OUT.png]
// A GLFW + OpenGL 3 Dear ImGui app showing sparsescope::imgui::TracePanel: all that embedding the
// panel takes. With --screenshot it draws a few frames, saves the last one and exits. Exit status:
// 0 success, 1 when the trace cannot be read or the PNG cannot be written, 2 for usage errors (a
// layer, head or query out of range, an unknown colormap), 3 when no window with an OpenGL 3
// context can be opened (no display).
#include <GLFW/glfw3.h>
#include <imgui.h>

#include <CLI/CLI.hpp>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sparsescope/imgui/trace_panel.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"

namespace {

constexpr int kScreenshotFrames = 3;  // ImGui lays windows out over the first frames

std::string glfw_error;

int fail(int status, const std::string& message) {
  std::fprintf(stderr, "sparsescope-imgui-demo: %s\n", message.c_str());
  return status;
}

// The back buffer as an RGB image, top row first.
sparsescope::vision::Image read_framebuffer(int width, int height) {
  sparsescope::vision::Image image;
  image.width = width;
  image.height = height;
  std::vector<std::uint8_t> rows(image.row_bytes() * height);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE, rows.data());
  image.pixels.resize(rows.size());
  for (int y = 0; y < height; ++y) {
    std::copy_n(rows.data() + (height - 1 - y) * image.row_bytes(), image.row_bytes(), image.pixel(0, y));
  }
  return image;
}

}  // namespace

int main(int argc, char** argv) {
  namespace ss = sparsescope;
  CLI::App app{"sparsescope-imgui-demo: a recorded trace in the Dear ImGui panel", "sparsescope-imgui-demo"};
  std::string trace_path, colormap, screenshot;
  ss::imgui::Selection flags;
  app.add_option("trace", trace_path, "Trace (.safetensors) as `sparsescope infer --record` writes it")->required();
  auto* layer = app.add_option("--layer", flags.layer, "Layer (attention site) to select (default: the last)");
  auto* head = app.add_option("--head", flags.head, "Head to select");
  auto* query = app.add_option("--query", flags.query, "Query token to select (0 is the class token)");
  auto* opacity = app.add_option("--opacity", flags.opacity, "Weight of the map over the image, 0 to 1");
  const std::map<std::string, ss::imgui::MapKind> kinds = {
      {"head", ss::imgui::MapKind::Head}, {"mean", ss::imgui::MapKind::MeanOfHeads}, {"rollout", ss::imgui::MapKind::Rollout}};
  auto* kind = app.add_option("--map", flags.kind, "head, mean (of the layer's heads) or rollout")
                   ->transform(CLI::CheckedTransformer(kinds, CLI::ignore_case));
  app.add_option("--colormap", colormap, "viridis, magma, inferno, turbo or gray");
  app.add_option("--screenshot", screenshot, "Draw a few frames, save the window to OUT.png and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return fail(2, std::string(e.what()) + " (see sparsescope-imgui-demo --help)");
  }

  std::unique_ptr<ss::imgui::TracePanel> panel;
  try {
    panel = std::make_unique<ss::imgui::TracePanel>(
        std::make_shared<const ss::vision::Trace>(ss::vision::load_trace(trace_path)));
  } catch (const ss::Error& e) {
    return fail(1, e.what());
  }
  try {
    ss::imgui::Selection s = panel->selection();
    if (*layer) s.layer = flags.layer;
    if (*head) s.head = flags.head;
    if (*query) s.query = flags.query;
    if (*kind) s.kind = flags.kind;
    if (*opacity) s.opacity = flags.opacity;
    if (!colormap.empty()) s.colormap = ss::vision::parse_colormap(colormap);
    panel->select(s);
  } catch (const ss::Error& e) {
    return fail(2, e.what());
  }

  glfwSetErrorCallback([](int, const char* description) { glfw_error = description; });
  if (!glfwInit()) return fail(3, "cannot open a window: " + glfw_error);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
  const std::string title = "sparsescope: " + std::filesystem::path(trace_path).filename().string();
  GLFWwindow* window = glfwCreateWindow(960, 540, title.c_str(), nullptr, nullptr);
  if (window == nullptr) {
    glfwTerminate();
    return fail(3, "cannot open a window with an OpenGL 3 context: " + glfw_error);
  }
  glfwMakeContextCurrent(window);
  glfwSwapInterval(1);
  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  ImGui::GetIO().IniFilename = nullptr;  // leave no imgui.ini behind
  ImGui::StyleColorsDark();
  ImGui_ImplGlfw_InitForOpenGL(window, true);
  ImGui_ImplOpenGL3_Init("#version 130");

  int status = 0;
  for (int frame = 1; !glfwWindowShouldClose(window); ++frame) {
    glfwPollEvents();
    ImGui_ImplOpenGL3_NewFrame();
    ImGui_ImplGlfw_NewFrame();
    if (!screenshot.empty()) ImGui::GetIO().MousePos = ImVec2(-FLT_MAX, -FLT_MAX);  // no hover, no tooltip
    ImGui::NewFrame();

    ImGui::SetNextWindowPos(ImVec2(0, 0));
    ImGui::SetNextWindowSize(ImGui::GetIO().DisplaySize);
    ImGui::Begin(title.c_str(), nullptr,
                 ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoResize | ImGuiWindowFlags_NoCollapse);
    panel->draw();
    ImGui::End();

    ImGui::Render();
    int width = 0, height = 0;
    glfwGetFramebufferSize(window, &width, &height);
    glViewport(0, 0, width, height);
    glClearColor(0.1f, 0.1f, 0.1f, 1);
    glClear(GL_COLOR_BUFFER_BIT);
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
    if (!screenshot.empty() && frame == kScreenshotFrames) {
      try {
        ss::vision::write_png(screenshot, read_framebuffer(width, height));
        const auto& r = panel->overlay_rect();
        std::printf("wrote %s (%d x %d); overlay at %.0f %.0f, %.0f x %.0f\n", screenshot.c_str(), width, height, r.x,
                    r.y, r.width, r.height);
      } catch (const ss::Error& e) {
        status = fail(1, e.what());
      }
      break;
    }
    glfwSwapBuffers(window);
  }

  panel.reset();  // its textures go while the context is current
  ImGui_ImplOpenGL3_Shutdown();
  ImGui_ImplGlfw_Shutdown();
  ImGui::DestroyContext();
  glfwDestroyWindow(window);
  glfwTerminate();
  return status;
}
