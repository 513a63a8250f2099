#include "sparsescope/vision/recorder.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <optional>

#include "site_recording.h"
#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/kernels/version.h"

namespace sparsescope::vision {

// One attend() call kept until take(): the recorded items' q and k and what the call ran.
struct Recorder::Observation {
  std::optional<SitePart> part;  // none: the whole site
  at::Tensor q, k;               // [I, H, N_part, D], [I, H, M_part, D] (K/V heads expanded)
  Pattern pattern;               // batch items of its tensors: items[i], or 0 when shared
  at::Tensor bias;               // a top-level Dense float mask [B|1, H|1, N_part, M_part], or undefined
  std::vector<int64_t> items;
  double scale = 1;
};

struct Recorder::Site {
  std::string name;
  int64_t queries = 0, keys = 0;
  std::vector<Observation> calls;
  std::optional<MapKind> map_kind;
  at::Tensor values;  // a map's [I, H, rows, columns]
  size_t items = 0;
};

namespace {

// Entry b of a [B|1, ...] tensor.
at::Tensor item(const at::Tensor& t, int64_t b) { return t.select(0, t.size(0) == 1 ? 0 : b); }

// A site index tensor: int64 [length] with values in [0, extent).
void check_index(const at::Tensor& t, int64_t length, int64_t extent, const std::string& what) {
  SPARSESCOPE_CHECK(t.scalar_type() == at::kLong && t.dim() == 1 && t.size(0) == length, what, " must be int64 [",
                    length, "], got ", t.scalar_type(), " ", t.sizes());
  if (length == 0) return;
  const at::Tensor c = t.cpu();
  SPARSESCOPE_CHECK(c.min().item<int64_t>() >= 0 && c.max().item<int64_t>() < extent, what,
                    " holds indices outside [0, ", extent, ")");
}

const char* map_kind_name(MapKind kind) { return kind == MapKind::Channel ? kChannelMap : kKernelMap; }

}  // namespace

class Recorder::SiteProbe : public Probe {
 public:
  SiteProbe(Recorder& recorder, std::string name) : recorder_(recorder), name_(std::move(name)) {}
  void set_part(const SitePart& part) { part_ = part; }

  void observe(const at::Tensor& q, const at::Tensor& k, const at::Tensor&, const Pattern& pattern,
               double scale) override {
    const std::vector<int64_t> items = recorder_.items_of(q.size(0), name_);
    Site& site = recorder_.site_named(name_);
    const int64_t B = q.size(0), H = q.size(1), n = q.size(2), m = k.size(2);
    const std::string where = "Recorder: site '" + name_ + "'";
    SPARSESCOPE_CHECK(!site.map_kind, where, " was handed a map and ran attend(); call take() after each forward pass");
    int64_t site_n = n, site_m = m;
    if (!part_) {
      SPARSESCOPE_CHECK(site.calls.empty(), where, " was observed twice; call take() after each forward pass");
    } else {
      const SitePart& p = *part_;
      const std::string at = where + ", part '" + p.name + "'";
      SPARSESCOPE_CHECK(valid_part_name(p.name), at, ": a part's name must be letters, digits, '_', '.' or '-'");
      for (const Observation& o : site.calls) {
        SPARSESCOPE_CHECK(o.part, where, " was observed whole and in parts; call take() after each forward pass");
        SPARSESCOPE_CHECK(o.part->name != p.name, at, " was observed twice; call take() after each forward pass");
      }
      site_n = p.site_queries > 0 ? p.site_queries : n;
      site_m = p.site_keys > 0 ? p.site_keys : m;
      if (p.queries.defined()) {
        check_index(p.queries, n, site_n, at + ": SitePart::queries");
      } else {
        SPARSESCOPE_CHECK(n == site_n, at, " runs ", n, " queries of the site's ", site_n, " without SitePart::queries");
      }
      if (p.keys.defined()) {
        check_index(p.keys, m, site_m, at + ": SitePart::keys");
      } else {
        SPARSESCOPE_CHECK(m == site_m, at, " runs ", m, " keys of the site's ", site_m, " without SitePart::keys");
      }
      if (p.gate.defined()) {
        SPARSESCOPE_CHECK(p.merge == SitePart::Merge::Sum, at, ": a part merged by log-sum-exp takes no gate");
        SPARSESCOPE_CHECK(p.gate.dim() == 3 && (p.gate.size(0) == B || p.gate.size(0) == 1) &&
                              (p.gate.size(1) == H || p.gate.size(1) == 1) && p.gate.size(2) == n &&
                              at::isFloatingType(p.gate.scalar_type()),
                          at, ": SitePart::gate must be floating [", B, "|1, ", H, "|1, ", n, "], got ", p.gate.sizes());
      }
      if (!site.calls.empty()) {
        SPARSESCOPE_CHECK(site.queries == site_n && site.keys == site_m, at, " is of a site of ", site_n, " x ", site_m,
                          ", the site's other parts of ", site.queries, " x ", site.keys);
      }
    }
    site.queries = site_n;
    site.keys = site_m;
    site.items = items.size();

    const at::Tensor index = at::tensor(items, at::kLong).to(q.device());
    Observation o;
    o.part = part_;
    if (o.part) {  // the recorded items of the gate, detached from autograd
      if (o.part->gate.defined()) {
        o.part->gate = o.part->gate.size(0) == 1 ? o.part->gate.detach() : o.part->gate.detach().index_select(0, index);
      }
      for (at::Tensor* t : {&o.part->queries, &o.part->keys}) {
        if (t->defined()) *t = t->to(q.device());
      }
    }
    o.q = q.detach().index_select(0, index);
    o.k = expand_kv_heads(k.detach(), H).index_select(0, index);  // grouped-query attention: one K head per query head
    o.pattern = pattern;
    // An additive bias of a top-level Dense pattern shapes the probabilities beyond the keep mask
    // (SwinBERT's soft mask). Biases of a Permuted pattern's inner Dense act on permuted positions
    // and are not applied here; their -inf entries still drop keys through the mask.
    if (const auto* dense = std::get_if<Dense>(&pattern);
        dense && dense->mask.defined() && dense->mask.scalar_type() != at::kBool) {
      o.bias = dense->mask.detach();
    }
    o.items = items;
    o.scale = scale;
    site.calls.push_back(std::move(o));
  }

 private:
  Recorder& recorder_;
  std::string name_;
  std::optional<SitePart> part_;
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

std::vector<int64_t> Recorder::items_of(int64_t batch, const std::string& site) const {
  std::vector<int64_t> items = options_.items;
  if (items.empty()) {
    for (int64_t b = 0; b < batch; ++b) items.push_back(b);
  }
  for (const int64_t b : items) {
    SPARSESCOPE_CHECK(b < batch, "Recorder: batch item ", b, " was asked for (RecorderOptions::items) but site '", site,
                      "' ran a batch of ", batch);
  }
  return items;
}

Recorder::Site& Recorder::site_named(const std::string& name) {
  for (auto& s : sites_) {
    if (s->name == name) return *s;
  }
  sites_.push_back(std::make_unique<Site>());
  sites_.back()->name = name;
  return *sites_.back();
}

Probe* Recorder::site(const std::string& name) {
  auto& probe = probes_[name];
  if (!probe) probe = std::make_unique<SiteProbe>(*this, name);
  return probe.get();
}

Probe* Recorder::part(const std::string& site, const SitePart& part) {
  auto& probe = probes_[site + "/" + part.name];
  if (!probe) probe = std::make_unique<SiteProbe>(*this, site);
  probe->set_part(part);
  return probe.get();
}

void Recorder::map(const std::string& name, MapKind kind, const at::Tensor& values) {
  SPARSESCOPE_CHECK(values.defined() && values.dim() == 4 && at::isFloatingType(values.scalar_type()),
                    "Recorder: the map of site '", name, "' must be floating [B, H, rows, columns], got ",
                    values.defined() ? values.sizes() : at::IntArrayRef{});
  const std::vector<int64_t> items = items_of(values.size(0), name);
  Site& site = site_named(name);
  SPARSESCOPE_CHECK(site.calls.empty() && !site.map_kind, "Recorder: site '", name,
                    "' was observed twice; call take() after each forward pass");
  site.map_kind = kind;
  site.values = values.detach().index_select(0, at::tensor(items, at::kLong).to(values.device()));
  site.queries = values.size(2);
  site.keys = values.size(3);
  site.items = items.size();
}

std::vector<Trace> Recorder::take() {
  const auto sites = std::move(sites_);
  sites_.clear();
  std::size_t items = 0;
  for (const auto& s : sites) items = std::max(items, s->items);
  std::vector<Trace> traces(items);
  for (auto& trace : traces) trace.info.producer = trace_producer();
  for (const auto& site : sites) {
    for (std::size_t i = 0; i < site->items; ++i) {
      SiteTrace s;
      if (site->map_kind) {
        s = detail::record_map(site->values[static_cast<int64_t>(i)], options_);
        s.kind = map_kind_name(*site->map_kind);
      } else {
        std::vector<detail::PartInput> parts;
        for (const Observation& o : site->calls) {
          const int64_t b = o.items[i], n = o.q.size(2), m = o.k.size(2);
          detail::PartInput p;
          p.q = o.q[static_cast<int64_t>(i)];
          p.k = o.k[static_cast<int64_t>(i)];
          const at::Device device = p.q.device();
          p.keep = [pattern = o.pattern, b, n, m, device](const at::Tensor& rows) {
            return item(materialize_rows(pattern, n, m, rows), b).to(device);
          };
          if (o.bias.defined()) p.bias = item(o.bias, b).to(device);
          p.scale = o.scale;
          if (o.part) {
            p.name = o.part->name;
            p.lse = o.part->merge == SitePart::Merge::Lse;
            if (o.part->gate.defined()) p.gate = item(o.part->gate, static_cast<int64_t>(i));
            p.queries = o.part->queries;
            p.keys = o.part->keys;
          }
          parts.push_back(std::move(p));
        }
        s = detail::record_site(parts, site->queries, site->keys, options_);
        std::string pattern;
        for (const Observation& o : site->calls) {
          const std::string kind = kind_name(o.pattern);
          if (("+" + pattern + "+").find("+" + kind + "+") == std::string::npos) pattern += (pattern.empty() ? "" : "+") + kind;
        }
        s.pattern = pattern;
      }
      s.name = site->name;
      traces[i].sites.push_back(std::move(s));
    }
  }
  return traces;
}

}  // namespace sparsescope::vision
