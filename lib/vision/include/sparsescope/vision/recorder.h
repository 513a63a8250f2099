#pragma once
// The Probe users meet (DESIGN.md section 4): pass a Recorder to a model's forward pass and take
// one Trace per batch item afterwards. For every site it recomputes the probabilities
// softmax(scale q k^T) over the keys the pattern keeps, in float32 on the tensors' device, so
// fused kernels that never materialise them can still be inspected; a site observed in parts
// (probe_set.h) gets its effective probabilities, the union of the masks and each part's map and
// gate. Observation only keeps the recorded items' q and k; take() computes, walking each site's
// [N, M] in chunks of rows (masks through materialize_rows()), never the whole beyond the budget.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sparsescope/vision/probe_set.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::vision {

struct RecorderOptions {
  /// Cells per head (N * M) kept at full resolution; beyond it, maps are mean-pooled over square
  /// cells, the smallest that fit the budget, and full rows are kept for `queries`.
  int64_t budget = 1024 * 1024;
  /// Queries whose full rows are kept when a site is pooled (those >= N at a site are left out).
  std::vector<int64_t> queries = {0};
  /// Also compute the dense probabilities, for the recall of the pattern's kept connections.
  bool compare_dense = true;
  /// Batch items to record, in the order take() returns them; empty records all.
  std::vector<int64_t> items;
  /// Float32 cells each step holds per temporary (probabilities of a few heads or a few rows of
  /// one head), which bounds the recorder's extra memory on the device.
  int64_t chunk_cells = int64_t{1} << 24;
};

class Recorder : public ProbeSet {
 public:
  /// Throws sparsescope::Error naming the option that is out of range.
  explicit Recorder(RecorderOptions options = {});
  ~Recorder() override;
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  Probe* site(const std::string& name) override;
  Probe* part(const std::string& site, const SitePart& part) override;
  void map(const std::string& site, MapKind kind, const at::Tensor& values) override;

  /// One Trace per recorded batch item with the sites observed since the last take(), in the order
  /// they were first observed. `info.producer` is filled in; the rest of `info` and `image` are the
  /// caller's. Leaves the recorder empty for the next forward pass. Throws sparsescope::Error
  /// naming the site when its parts disagree on its size.
  std::vector<Trace> take();

  const RecorderOptions& options() const { return options_; }

 private:
  class SiteProbe;
  friend class SiteProbe;
  struct Observation;
  struct Site;

  Site& site_named(const std::string& name);
  std::vector<int64_t> items_of(int64_t batch, const std::string& site) const;

  RecorderOptions options_;
  std::map<std::string, std::unique_ptr<SiteProbe>> probes_;  // by site, or site + "/" + part
  std::vector<std::unique_ptr<Site>> sites_;                   // in observation order
};

}  // namespace sparsescope::vision
