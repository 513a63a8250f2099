#include "sparsescope/imgui/trace_panel.h"

#include <GL/gl.h>
#include <imgui.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/prediction.h"

namespace sparsescope::imgui {

namespace {

constexpr vision::Colormap kColormaps[] = {vision::Colormap::Viridis, vision::Colormap::Magma,
                                           vision::Colormap::Inferno, vision::Colormap::Turbo, vision::Colormap::Gray};
constexpr float kOverlaySide = 384;  // pixels of the overlay's longer side
constexpr float kMaxTile = 48;       // pixels of a grid tile's longer side at most

// What the head grid depends on: the query and the colormap.
Selection atlas_key(const Selection& s) {
  Selection key;
  key.query = s.query;
  key.colormap = s.colormap;
  return key;
}

}  // namespace

// One RGBA texture and the selection it was rendered for.
class TracePanel::Texture {
 public:
  ~Texture() {
    if (id_ != 0) glDeleteTextures(1, &id_);
  }

  bool shows(const Selection& key) const { return id_ != 0 && key_ == key; }

  void upload(const RgbaImage& image, const Selection& key) {
    GLint bound = 0;
    glGetIntegerv(GL_TEXTURE_BINDING_2D, &bound);  // the host app's binding, restored below
    if (id_ == 0) glGenTextures(1, &id_);
    glBindTexture(GL_TEXTURE_2D, id_);
    // Small maps magnified show their patches; large images shrink smoothly.
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_LINEAR);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, image.width, image.height, 0, GL_RGBA, GL_UNSIGNED_BYTE,
                 image.pixels.data());
    glBindTexture(GL_TEXTURE_2D, static_cast<GLuint>(bound));
    width_ = static_cast<float>(image.width);
    height_ = static_cast<float>(image.height);
    key_ = key;
  }

  ImTextureID id() const { return reinterpret_cast<ImTextureID>(static_cast<std::intptr_t>(id_)); }
  float width() const { return width_; }
  float height() const { return height_; }

 private:
  GLuint id_ = 0;
  float width_ = 0;
  float height_ = 0;
  Selection key_;
};

TracePanel::TracePanel(std::shared_ptr<const vision::Trace> trace)
    : trace_(std::move(trace)), overlay_(std::make_unique<Texture>()), atlas_(std::make_unique<Texture>()) {
  SPARSESCOPE_CHECK(trace_ != nullptr, "TracePanel: no trace");
  SPARSESCOPE_CHECK(!trace_->sites.empty(), "trace of '", trace_->info.input, "' holds no attention site");
  selection_.layer = static_cast<int>(trace_->sites.size()) - 1;
  check_selection(*trace_, selection_);
  render_head_atlas(*trace_, selection_.query, selection_.colormap);  // a trace whose maps fail throws here
}

TracePanel::~TracePanel() = default;

void TracePanel::select(const Selection& selection) {
  check_selection(*trace_, selection);
  selection_ = selection;
}

void TracePanel::draw() {
  // Render before any widget, so that a failure leaves no ImGui scope open.
  try {
    if (!overlay_->shows(selection_)) overlay_->upload(render_overlay(*trace_, selection_), selection_);
    if (!atlas_->shows(atlas_key(selection_))) {
      atlas_->upload(render_head_atlas(*trace_, selection_.query, selection_.colormap), atlas_key(selection_));
    }
    error_.clear();
  } catch (const sparsescope::Error& e) {
    error_ = e.what();
  }
  ImGui::PushID(this);
  draw_controls();
  if (!error_.empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", error_.c_str());
  if (overlay_->width() > 0 && atlas_->width() > 0) {  // nothing to draw before the first successful render
    draw_overlay();
    ImGui::SameLine();
    draw_head_grid();
    ImGui::TextDisabled("Click a patch to make it the query, a tile to select that head, mean or rollout.");
  }
  ImGui::PopID();
}

void TracePanel::draw_controls() {
  const vision::TokenLayout& layout = trace_->info.layout;
  Selection next = selection_;
  const std::string query = describe_token(layout, next.query);
  if (next.kind == MapKind::Rollout) {
    ImGui::Text("rollout, query %s", query.c_str());
  } else if (next.kind == MapKind::MeanOfHeads) {
    ImGui::Text("%s, mean of heads, query %s", trace_->sites[next.layer].name.c_str(), query.c_str());
  } else {
    ImGui::Text("%s, head %d, query %s", trace_->sites[next.layer].name.c_str(), next.head, query.c_str());
  }
  if (!trace_->info.topk.empty()) ImGui::Text("Predicted: %s", vision::describe(trace_->info.topk).c_str());
  ImGui::SetNextItemWidth(120);
  ImGui::SliderInt("layer", &next.layer, 0, static_cast<int>(trace_->sites.size()) - 1, "%d",
                   ImGuiSliderFlags_AlwaysClamp);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(120);
  ImGui::SliderInt("head", &next.head, 0, static_cast<int>(trace_->sites[next.layer].heads()) - 1, "%d",
                   ImGuiSliderFlags_AlwaysClamp);
  next.head = std::min(next.head, static_cast<int>(trace_->sites[next.layer].heads()) - 1);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(130);
  if (ImGui::BeginCombo("map", to_string(next.kind))) {
    for (const MapKind k : {MapKind::Head, MapKind::MeanOfHeads, MapKind::Rollout}) {
      if (ImGui::Selectable(to_string(k), k == next.kind)) next.kind = k;
    }
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  if (ImGui::Button(describe_token(layout, 0).c_str())) next.query = 0;
  ImGui::SameLine();
  ImGui::SetNextItemWidth(100);
  if (ImGui::BeginCombo("colormap", vision::to_string(next.colormap))) {
    for (const vision::Colormap c : kColormaps) {
      if (ImGui::Selectable(vision::to_string(c), c == next.colormap)) next.colormap = c;
    }
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  ImGui::SetNextItemWidth(120);
  ImGui::SliderFloat("opacity", &next.opacity, 0, 1, "%.2f", ImGuiSliderFlags_AlwaysClamp);
  selection_ = next;
}

void TracePanel::draw_overlay() {
  const float scale = kOverlaySide / std::max(overlay_->width(), overlay_->height());
  const ImVec2 size(overlay_->width() * scale, overlay_->height() * scale);
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  ImGui::Image(overlay_->id(), size);
  overlay_rect_ = {origin.x, origin.y, size.x, size.y};
  if (!ImGui::IsItemHovered()) return;
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  const int64_t patch = patch_at(trace_->info.layout, (mouse.x - origin.x) / size.x, (mouse.y - origin.y) / size.y);
  ImGui::SetTooltip("click: query %s", describe_token(trace_->info.layout, patch).c_str());
  if (ImGui::IsItemClicked()) selection_.query = patch;
}

void TracePanel::draw_head_grid() {
  const auto layers = static_cast<int>(trace_->sites.size());
  const float gh = static_cast<float>(trace_->info.layout.grid[1]), gw = static_cast<float>(trace_->info.layout.grid[2]);
  const ImVec2 spacing = ImGui::GetStyle().ItemSpacing;
  // Tiles as large as lets every layer and the rollout row fit beside the overlay.
  const float side = std::clamp(kOverlaySide / static_cast<float>(layers + 1) - spacing.y, 12.0f, kMaxTile);
  const ImVec2 tile(side * gw / std::max(gh, gw), side * gh / std::max(gh, gw));
  const float label = ImGui::CalcTextSize("00").x + spacing.x;
  const float columns = atlas_->width() / gw, rows = atlas_->height() / gh;
  const int mean_column = static_cast<int>(columns) - 1;

  // The atlas tile at (row, column) as an image button of the grid; true when clicked.
  auto draw_tile = [&](int row, int column, bool selected, const std::string& tooltip) {
    const ImVec2 uv0(static_cast<float>(column) / columns, static_cast<float>(row) / rows);
    const ImVec2 uv1(static_cast<float>(column + 1) / columns, static_cast<float>(row + 1) / rows);
    ImGui::Image(atlas_->id(), tile, uv0, uv1);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", tooltip.c_str());
    if (selected) {
      ImGui::GetWindowDrawList()->AddRect(ImGui::GetItemRectMin(), ImGui::GetItemRectMax(),
                                          IM_COL32(255, 255, 255, 255), 0, 0, 2);
    }
    return ImGui::IsItemClicked();
  };

  ImGui::BeginChild("heads", ImVec2(0, kOverlaySide), false, ImGuiWindowFlags_HorizontalScrollbar);
  const Selection& s = selection_;
  for (int l = 0; l < layers; ++l) {
    const auto& site = trace_->sites[l];
    ImGui::Text("%d", l);
    for (int h = 0; h < site.heads(); ++h) {
      ImGui::SameLine(h == 0 ? label : 0);
      const bool selected = s.kind == MapKind::Head && l == s.layer && h == s.head;
      if (draw_tile(l, h, selected, site.name + ", head " + std::to_string(h))) {
        selection_.layer = l;
        selection_.head = h;
        selection_.kind = MapKind::Head;
      }
    }
    // The mean column, set apart from the heads by a gap.
    ImGui::SameLine(label + static_cast<float>(mean_column) * (tile.x + spacing.x) + 2 * spacing.x);
    if (draw_tile(l, mean_column, s.kind == MapKind::MeanOfHeads && l == s.layer, site.name + ", mean of heads")) {
      selection_.layer = l;
      selection_.kind = MapKind::MeanOfHeads;
    }
  }
  ImGui::Text("R");
  ImGui::SameLine(label);
  if (draw_tile(layers, 0, s.kind == MapKind::Rollout, "rollout through every layer")) selection_.kind = MapKind::Rollout;
  ImGui::EndChild();
}

}  // namespace sparsescope::imgui
