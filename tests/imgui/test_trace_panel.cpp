// TracePanel driven like a user: frames of ImGui with the mouse moved and clicked, in a hidden GLFW
// window whose OpenGL context holds the panel's textures (CTest runs this under xvfb-run). Nothing
// is drawn to the screen: ImGui builds its draw lists and the test reads the panel's selection.
#include <GLFW/glfw3.h>
#include <imgui.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <tuple>
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

using Pick = std::tuple<si::MapKind, int, int>;  // kind, layer, head

// The distinct (kind, layer, head) picks that clicks along a line select, in order.
std::vector<Pick> distinct(const std::vector<si::Selection>& selections) {
  std::vector<Pick> seen;
  for (const auto& s : selections) {
    if (seen.empty() || seen.back() != Pick(s.kind, s.layer, s.head)) seen.emplace_back(s.kind, s.layer, s.head);
  }
  return seen;
}

constexpr si::MapKind kHead = si::MapKind::Head, kMean = si::MapKind::MeanOfHeads, kRollout = si::MapKind::Rollout;

}  // namespace

TEST_F(PanelInAWindow, ClickingAPatchMakesItTheQuery) {
  EXPECT_EQ(panel_->selection().query, 0) << "the class token first";
  const si::ScreenRect r = panel_->overlay_rect();
  ASSERT_GT(r.width, 0);
  const float patch_w = r.width / st::kFixtureGrid, patch_h = r.height / st::kFixtureGrid;
  EXPECT_EQ(click(r.x + 1.5f * patch_w, r.y + 3.5f * patch_h).query, 1 + 3 * st::kFixtureGrid + 1);
  EXPECT_EQ(click(r.x + 4.5f * patch_w, r.y + 0.5f * patch_h).query, 1 + 4);
}

TEST_F(PanelInAWindow, ClickingATileSelectsItsHeadMeanOrRollout) {
  const si::ScreenRect r = panel_->overlay_rect();
  si::Selection start = panel_->selection();
  EXPECT_EQ(start.layer, st::kFixtureLayers - 1);
  // Along the grid's first row, right of the overlay: layer 0's heads from left to right, then its
  // mean of heads.
  std::vector<si::Selection> row;
  float head0_x = -1;
  for (float x = r.x + r.width + 1; x < 960; x += 3) {
    row.push_back(click(x, r.y + 10));
    if (head0_x < 0 && row.back().layer == 0 && row.back().head == 0 && row.back().kind == kHead) head0_x = x + 6;
  }
  const std::vector<Pick> heads{{kHead, start.layer, start.head}, {kHead, 0, 0}, {kHead, 0, 1},
                                {kHead, 0, 2},  {kHead, 0, 3},  {kMean, 0, 3}};
  EXPECT_EQ(distinct(row), heads);
  // Down head 0's column: every layer in turn, then the rollout.
  std::vector<si::Selection> column;
  for (float y = r.y; y < r.y + r.height; y += 3) column.push_back(click(head0_x, y));
  const std::vector<Pick> layers{{kHead, 0, 0}, {kHead, 1, 0}, {kHead, 2, 0}, {kRollout, 2, 0}};
  EXPECT_EQ(distinct(column), layers);
  EXPECT_EQ(panel_->selection().query, 0) << "a tile keeps the query";
}
