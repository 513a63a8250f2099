// TracePanel driven like a user: frames of ImGui with the mouse moved and clicked, in a hidden GLFW
// window whose OpenGL context holds the panel's textures (CTest runs this under xvfb-run). Nothing
// is drawn to the screen: ImGui builds its draw lists and the test reads the panel's selection.
#include <GLFW/glfw3.h>
#include <imgui.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparsescope/imgui/trace_panel.h"
#include "viewer_fixture.h"

namespace si = sparsescope::imgui;
namespace st = sparsescope::test;

namespace {

class PanelInAWindow : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!glfwInit()) GTEST_SKIP() << "no display for a window (GLFW cannot start)";
    glfwWindowHint(GLFW_VISIBLE, GLFW_FALSE);
    window_ = glfwCreateWindow(960, 540, "test", nullptr, nullptr);
    if (window_ == nullptr) GTEST_SKIP() << "no window with an OpenGL context here";
    glfwMakeContextCurrent(window_);
    ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    io.IniFilename = nullptr;
    io.DisplaySize = ImVec2(960, 540);
    unsigned char* pixels = nullptr;
    int width = 0, height = 0;
    io.Fonts->GetTexDataAsRGBA32(&pixels, &width, &height);  // ImGui needs its font atlas built
    panel_ = std::make_unique<si::TracePanel>(std::make_shared<const sparsescope::vision::Trace>(st::fixture_trace()));
    frame(ImVec2(-1, -1), false);  // lays the window out, so that the next frames can hover it
  }

  void TearDown() override {
    panel_.reset();
    if (ImGui::GetCurrentContext() != nullptr) ImGui::DestroyContext();
    if (window_ != nullptr) glfwDestroyWindow(window_);
    glfwTerminate();
  }

  void frame(ImVec2 mouse, bool down) {
    ImGuiIO& io = ImGui::GetIO();
    io.DeltaTime = 1.0f / 60;
    io.MousePos = mouse;
    io.MouseDown[0] = down;
    ImGui::NewFrame();
    ImGui::SetNextWindowPos(ImVec2(0, 0));
    ImGui::SetNextWindowSize(io.DisplaySize);
    ImGui::Begin("panel");
    panel_->draw();
    ImGui::End();
    ImGui::Render();
  }

  si::Selection click(float x, float y) {
    frame(ImVec2(x, y), false);
    frame(ImVec2(x, y), true);
    frame(ImVec2(x, y), false);
    return panel_->selection();
  }

  GLFWwindow* window_ = nullptr;
  std::unique_ptr<si::TracePanel> panel_;
};

// The distinct (layer, head) pairs that clicks along a line select, in order.
std::vector<std::pair<int, int>> distinct(const std::vector<si::Selection>& selections) {
  std::vector<std::pair<int, int>> seen;
  for (const auto& s : selections) {
    if (seen.empty() || seen.back() != std::pair(s.layer, s.head)) seen.emplace_back(s.layer, s.head);
  }
  return seen;
}

}  // namespace

TEST_F(PanelInAWindow, ClickingAPatchMakesItTheQuery) {
  EXPECT_EQ(panel_->selection().query, 0) << "the class token first";
  const si::ScreenRect r = panel_->overlay_rect();
  ASSERT_GT(r.width, 0);
  const float patch_w = r.width / st::kFixtureGrid, patch_h = r.height / st::kFixtureGrid;
  EXPECT_EQ(click(r.x + 1.5f * patch_w, r.y + 3.5f * patch_h).query, 1 + 3 * st::kFixtureGrid + 1);
  EXPECT_EQ(click(r.x + 4.5f * patch_w, r.y + 0.5f * patch_h).query, 1 + 4);
}

TEST_F(PanelInAWindow, ClickingATileSelectsItsLayerAndHead) {
  const si::ScreenRect r = panel_->overlay_rect();
  si::Selection start = panel_->selection();
  EXPECT_EQ(start.layer, st::kFixtureLayers - 1);
  // Along the grid's first row, right of the overlay: layer 0's heads from left to right.
  std::vector<si::Selection> row;
  float head0_x = -1;
  for (float x = r.x + r.width + 1; x < 960; x += 3) {
    row.push_back(click(x, r.y + 10));
    if (head0_x < 0 && row.back().layer == 0 && row.back().head == 0) head0_x = x + 6;
  }
  const std::vector<std::pair<int, int>> heads{{start.layer, start.head}, {0, 0}, {0, 1}, {0, 2}, {0, 3}};
  EXPECT_EQ(distinct(row), heads);
  // Down head 0's column: every layer in turn.
  std::vector<si::Selection> column;
  for (float y = r.y; y < r.y + r.height; y += 3) column.push_back(click(head0_x, y));
  const std::vector<std::pair<int, int>> layers{{0, 0}, {1, 0}, {2, 0}};
  EXPECT_EQ(distinct(column), layers);
  EXPECT_EQ(panel_->selection().query, 0) << "a tile keeps the query";
}
