#pragma once
// The trace on display and what is selected in it (layer, head or summary map, query token), with
// the maps every view draws for the selected query computed once per query change. Widget-free:
// the views listen to its signals and read from it; tests drive it directly.
#include <ATen/core/Tensor.h>

#include <QObject>
#include <QString>
#include <memory>
#include <vector>

#include "sparsescope/vision/trace.h"

namespace sparsescope::viewer {

/// What the overlay shows for the selected layer: one head, the mean over its heads, or the
/// rollout through all layers.
enum class MapKind { Head, MeanOfHeads, Rollout };

struct Selection {
  int layer = 0;
  int head = 0;
  MapKind kind = MapKind::Head;
  int64_t query = 0;  // token index; 0 is the class token of prefixed layouts

  bool operator==(const Selection& o) const {
    return layer == o.layer && head == o.head && kind == o.kind && query == o.query;
  }
};

class TraceModel : public QObject {
  Q_OBJECT

 public:
  explicit TraceModel(QObject* parent = nullptr);

  /// Displays `trace`. The selection is kept where it still fits (the next frame of a video),
  /// otherwise it becomes the last layer, head 0, query 0. Throws sparsescope::Error naming the
  /// trace's input when its sites do not fit its token layout; the model is then unchanged.
  void set_trace(std::shared_ptr<const vision::Trace> trace);
  void clear();

  bool empty() const { return trace_ == nullptr; }
  const vision::Trace& trace() const { return *trace_; }
  std::shared_ptr<const vision::Trace> shared_trace() const { return trace_; }

  int layers() const;
  int heads(int layer) const;
  int max_heads() const;
  int64_t tokens() const;  // of the trace's token layout: the range of the query
  const Selection& selection() const { return selection_; }

  /// Selections out of range throw sparsescope::Error (the views only offer valid ones).
  void select(const Selection& selection);
  void select_layer(int layer);
  void select_head(int head);  // also switches the overlay to that head
  void select_kind(MapKind kind);
  void select_query(int64_t query);

  /// For the selected query: attention of each head of `layer` over the grid [H, T, gh, gw].
  const at::Tensor& layer_maps(int layer) const { return layer_maps_.at(layer); }
  /// Mean over the heads of `layer`: [T, gh, gw].
  const at::Tensor& mean_maps(int layer) const { return mean_maps_.at(layer); }
  /// Rollout through all layers [T, gh, gw]; undefined when the trace holds pooled maps, with the
  /// reason in rollout_error().
  const at::Tensor& rollout_maps() const { return rollout_; }
  const QString& rollout_error() const { return rollout_error_; }

  /// The grid frame the query belongs to (0 for prefix tokens): which slice of [T, gh, gw] to show.
  int64_t query_frame() const;
  /// The map the overlay shows: [gh, gw] (a zero map when rollout is unavailable).
  at::Tensor selected_map() const;
  /// The network's input image uint8 [S, S, 3], or a black image of the grid's size in pixels when
  /// the trace has none.
  at::Tensor background() const;
  /// "blocks.11.attn, head 3, query CLS".
  QString describe_selection() const;

 Q_SIGNALS:
  void trace_changed();      // a new trace (or none): redraw everything
  void query_changed();      // the maps changed: redraw maps, grid and highlights
  void selection_changed();  // layer, head or map kind changed: redraw the selected map and marks

 private:
  struct Maps {
    std::vector<at::Tensor> layer;
    std::vector<at::Tensor> mean;
    at::Tensor rollout;
    QString rollout_error;
  };
  static Maps compute_maps(const vision::Trace& trace, const vision::Trace& rollout_source, int64_t query);
  void check(const Selection& selection) const;

  std::shared_ptr<const vision::Trace> trace_;
  // The trace with each site's probabilities averaged over heads: rollout averages over heads
  // first, so it gives the same rollout while reading a twelfth of the values per query switch.
  std::shared_ptr<const vision::Trace> rollout_source_;
  Selection selection_;
  std::vector<at::Tensor> layer_maps_;
  std::vector<at::Tensor> mean_maps_;
  at::Tensor rollout_;
  QString rollout_error_;
};

}  // namespace sparsescope::viewer
