#include "sparsescope/vision/recorder.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "site_recording.h"
#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/kernels/version.h"

namespace sparsescope::vision {

class Recorder::SiteProbe : public Probe {
 public:
  SiteProbe(Recorder& recorder, std::string name) : recorder_(recorder), name_(std::move(name)) {}

  void observe(const at::Tensor& q, const at::Tensor& k, const at::Tensor&, const Pattern& pattern,
               double scale) override {
    const auto& opt = recorder_.options_;
    for (const auto& r : recorder_.recorded_) {
      SPARSESCOPE_CHECK(r.site != name_, "Recorder: site '", name_,
                        "' was observed twice; call take() after each forward pass");
    }
    const int64_t batch = q.size(0), N = q.size(2), M = k.size(2);
    std::vector<int64_t> items = opt.items;
    if (items.empty()) {
      for (int64_t b = 0; b < batch; ++b) items.push_back(b);
    }
    for (const int64_t b : items) {
      SPARSESCOPE_CHECK(b < batch, "Recorder: batch item ", b, " was asked for (RecorderOptions::items) but site '",
                        name_, "' ran a batch of ", batch);
    }
    // One mask for the whole batch: materialize() answers for every item and head at once.
    const at::Tensor keep = materialize(pattern, N, M).to(q.device());  // [B|1, H|1, N, M]
    // An additive bias of a top-level Dense pattern shapes the probabilities beyond the keep mask
    // (SwinBERT's soft mask). Biases of a Permuted pattern's inner Dense act on permuted positions
    // and are not applied here; their -inf entries still drop keys through the mask.
    at::Tensor bias;
    if (const auto* dense = std::get_if<Dense>(&pattern);
        dense && dense->mask.defined() && dense->mask.scalar_type() != at::kBool) {
      bias = dense->mask.to(q.device());
    }
    auto item = [](const at::Tensor& t, int64_t b) { return t.select(0, t.size(0) == 1 ? 0 : b); };

    const at::Tensor keys = expand_kv_heads(k, q.size(1));  // grouped-query attention: one K head per query head
    Recorded recorded{name_, {}};
    for (const int64_t b : items) {
      SiteTrace s =
          detail::record_site(q[b], keys[b], item(keep, b), bias.defined() ? item(bias, b) : at::Tensor(), scale, opt);
      s.name = name_;
      s.pattern = kind_name(pattern);
      recorded.items.push_back(std::move(s));
    }
    recorder_.recorded_.push_back(std::move(recorded));
  }

 private:
  Recorder& recorder_;
  std::string name_;
};

Recorder::Recorder(RecorderOptions options) : options_(std::move(options)) {
  SPARSESCOPE_CHECK(options_.budget >= 1, "RecorderOptions::budget must be at least 1 cell, got ", options_.budget);
  SPARSESCOPE_CHECK(options_.chunk_cells >= 1, "RecorderOptions::chunk_cells must be at least 1, got ",
                    options_.chunk_cells);
  for (const int64_t q : options_.queries) {
    SPARSESCOPE_CHECK(q >= 0, "RecorderOptions::queries holds ", q, "; queries are token indices >= 0");
  }
  for (std::size_t i = 0; i < options_.items.size(); ++i) {
    const int64_t b = options_.items[i];
    SPARSESCOPE_CHECK(b >= 0, "RecorderOptions::items holds ", b, "; batch items are indices >= 0");
    SPARSESCOPE_CHECK(std::find(options_.items.begin(), options_.items.begin() + i, b) == options_.items.begin() + i,
                      "RecorderOptions::items holds ", b, " twice");
  }
}

Recorder::~Recorder() = default;

Probe* Recorder::site(const std::string& name) {
  auto& probe = probes_[name];
  if (!probe) probe = std::make_unique<SiteProbe>(*this, name);
  return probe.get();
}

std::vector<Trace> Recorder::take() {
  std::size_t items = 0;
  for (const auto& r : recorded_) items = std::max(items, r.items.size());
  std::vector<Trace> traces(items);
  for (auto& trace : traces) trace.info.producer = trace_producer();
  for (auto& r : recorded_) {
    for (std::size_t i = 0; i < r.items.size(); ++i) traces[i].sites.push_back(std::move(r.items[i]));
  }
  recorded_.clear();
  return traces;
}

}  // namespace sparsescope::vision
