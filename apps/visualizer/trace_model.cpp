#include "trace_model.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_maps.h"
#include "token_grid.h"

namespace sparsescope::viewer {

namespace {

// Pixels per patch of the stand-in background of traces recorded without their input image.
constexpr int64_t kPixelsPerPatch = 16;

// Sites reduced to their mean over heads ([1, N, M]); what rollout needs, nothing else.
std::shared_ptr<const vision::Trace> mean_over_heads(const vision::Trace& trace) {
  auto reduced = std::make_shared<vision::Trace>();
  reduced->info = trace.info;
  for (const auto& site : trace.sites) {
    vision::SiteTrace s;
    s.name = site.name;
    s.pattern = site.pattern;
    s.queries = site.queries;
    s.keys = site.keys;
    s.pool = site.pool;
    s.probs = site.probs.to(at::kFloat).mean(0, /*keepdim=*/true);  // [1, N, M]
    reduced->sites.push_back(std::move(s));
  }
  return reduced;
}

// The viewer draws attention over the tokens; maps of other kinds (channel x channel, per-pixel
// kernels) are left out of its layers.
std::shared_ptr<const vision::Trace> attention_only(std::shared_ptr<const vision::Trace> trace) {
  const std::vector<const vision::SiteTrace*> sites = vision::attention_sites(*trace);
  if (sites.size() == trace->sites.size()) return trace;
  auto kept = std::make_shared<vision::Trace>();
  kept->info = trace->info;
  kept->image = trace->image;
  kept->coords = trace->coords;
  for (const vision::SiteTrace* s : sites) kept->sites.push_back(*s);
  return kept;
}

}  // namespace

TraceModel::TraceModel(QObject* parent) : QObject(parent) {}

TraceModel::Maps TraceModel::compute_maps(const vision::Trace& trace, const vision::Trace& rollout_source,
                                          int64_t query) {
  Maps maps;
  for (const auto& site : trace.sites) {
    maps.layer.push_back(vision::query_maps(site, trace.info.layout, query));  // [H, T, gh, gw]
    maps.mean.push_back(maps.layer.back().mean(0));                            // [T, gh, gw]
  }
  try {
    maps.rollout = vision::rollout(rollout_source, query);  // [T, gh, gw]
  } catch (const sparsescope::Error& e) {
    maps.rollout_error = QString::fromStdString(e.what());
  }
  return maps;
}

void TraceModel::set_trace(std::shared_ptr<const vision::Trace> trace) {
  SPARSESCOPE_CHECK(trace != nullptr, "no trace to display");
  trace = attention_only(std::move(trace));
  SPARSESCOPE_CHECK(!trace->sites.empty(), "trace of '", trace->info.input, "' holds no attention site");
  const int64_t tokens = trace->info.layout.tokens();
  Selection next = selection_;
  const bool fits = !empty() && tokens == this->tokens() && static_cast<int>(trace->sites.size()) == layers() &&
                    next.head < trace->sites[next.layer].heads();
  if (!fits) next = Selection{static_cast<int>(trace->sites.size()) - 1, 0, MapKind::Head, 0};
  Maps maps;
  std::shared_ptr<const vision::Trace> rollout_source;
  try {
    rollout_source = mean_over_heads(*trace);
    maps = compute_maps(*trace, *rollout_source, next.query);
  } catch (const sparsescope::Error& e) {
    SPARSESCOPE_FAIL("trace of '", trace->info.input, "': ", e.what());
  }
  trace_ = std::move(trace);
  rollout_source_ = std::move(rollout_source);
  selection_ = next;
  layer_maps_ = std::move(maps.layer);
  mean_maps_ = std::move(maps.mean);
  rollout_ = maps.rollout;
  rollout_error_ = maps.rollout_error;
  Q_EMIT trace_changed();
}

void TraceModel::clear() {
  trace_.reset();
  rollout_source_.reset();
  selection_ = {};
  layer_maps_.clear();
  mean_maps_.clear();
  rollout_ = at::Tensor();
  rollout_error_.clear();
  Q_EMIT trace_changed();
}

int TraceModel::layers() const { return empty() ? 0 : static_cast<int>(trace_->sites.size()); }

int TraceModel::heads(int layer) const {
  return empty() ? 0 : static_cast<int>(trace_->sites.at(layer).heads());
}

int TraceModel::max_heads() const {
  int most = 0;
  for (int l = 0; l < layers(); ++l) most = std::max(most, heads(l));
  return most;
}

int64_t TraceModel::tokens() const { return empty() ? 0 : trace_->info.layout.tokens(); }

void TraceModel::check(const Selection& s) const {
  SPARSESCOPE_CHECK(!empty(), "no trace is open");
  SPARSESCOPE_CHECK(s.layer >= 0 && s.layer < layers(), "layer ", s.layer, " out of range [0, ", layers(), ")");
  SPARSESCOPE_CHECK(s.head >= 0 && s.head < heads(s.layer), "head ", s.head, " out of range [0, ", heads(s.layer),
                    ") of layer ", s.layer);
  SPARSESCOPE_CHECK(s.query >= 0 && s.query < tokens(), "query ", s.query, " out of range [0, ", tokens(), ")");
}

void TraceModel::select(const Selection& selection) {
  check(selection);
  if (selection == selection_) return;
  const bool query_moved = selection.query != selection_.query;
  if (query_moved) {
    Maps maps = compute_maps(*trace_, *rollout_source_, selection.query);
    layer_maps_ = std::move(maps.layer);
    mean_maps_ = std::move(maps.mean);
    rollout_ = maps.rollout;
    rollout_error_ = maps.rollout_error;
  }
  selection_ = selection;
  if (query_moved) Q_EMIT query_changed();
  Q_EMIT selection_changed();
}

void TraceModel::select_layer(int layer) {
  Selection s = selection_;
  s.layer = layer;
  if (!empty() && layer >= 0 && layer < layers()) s.head = std::min(s.head, heads(layer) - 1);
  select(s);
}

void TraceModel::select_head(int head) {
  Selection s = selection_;
  s.head = head;
  s.kind = MapKind::Head;
  select(s);
}

void TraceModel::select_kind(MapKind kind) {
  Selection s = selection_;
  s.kind = kind;
  select(s);
}

void TraceModel::select_query(int64_t query) {
  Selection s = selection_;
  s.query = query;
  select(s);
}

int64_t TraceModel::query_frame() const {
  return empty() ? 0 : locate_token(trace_->info.layout, selection_.query).t;
}

at::Tensor TraceModel::selected_map() const {
  SPARSESCOPE_CHECK(!empty(), "no trace is open");
  const int64_t t = query_frame();
  switch (selection_.kind) {
    case MapKind::Head:
      return layer_maps_[selection_.layer][selection_.head][t];
    case MapKind::MeanOfHeads:
      return mean_maps_[selection_.layer][t];
    case MapKind::Rollout:
      break;
  }
  if (rollout_.defined()) return rollout_[t];
  return at::zeros_like(mean_maps_.front()[t]);
}

at::Tensor TraceModel::background() const {
  SPARSESCOPE_CHECK(!empty(), "no trace is open");
  if (trace_->image.defined() && trace_->image.numel() > 0) return trace_->image;
  const GridExtent g = grid_extent(trace_->info.layout);
  return at::zeros({g.rows * kPixelsPerPatch, g.cols * kPixelsPerPatch, 3}, at::kByte);
}

QString TraceModel::describe_selection() const {
  if (empty()) return {};
  const auto& s = selection_;
  const QString query = QString::fromStdString(describe_token(trace_->info.layout, s.query));
  const QString site = QString::fromStdString(trace_->sites[s.layer].name);
  switch (s.kind) {
    case MapKind::Head:
      return QString("%1, head %2, query %3").arg(site).arg(s.head).arg(query);
    case MapKind::MeanOfHeads:
      return QString("%1, mean of heads, query %2").arg(site, query);
    case MapKind::Rollout:
      break;
  }
  return QString("rollout through %1 layers, query %2").arg(layers()).arg(query);
}

}  // namespace sparsescope::viewer
