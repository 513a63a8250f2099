#pragma once
// A forward pass names each of its attention sites ("blocks.3.attn") and asks the ProbeSet for
// that site's probe, which attend() then calls. A site computed by several attend() calls (rows in
// ranges, gated branches, passes merged by log-sum-exp) asks for one probe per part; a site that
// computes its map without attend() (channel attention, per-pixel kernels) hands the map over. The
// recorder is the ProbeSet users meet.
#include <ATen/core/Tensor.h>

#include <string>

#include "sparsescope/kernels/probe.h"

namespace sparsescope::vision {

/// How one attend() call of a site computed in parts makes up the site's attention.
struct SitePart {
  enum class Merge {
    Sum,  ///< the site's probabilities add gate * the part's (gated branches, row ranges)
    Lse,  ///< the site's Lse parts are one softmax over the union of their keys (passes over
          ///< disjoint keys whose outputs are merged by their log-sum-exp)
  };
  std::string name;  ///< unique within the site: letters, digits and "_.-" ("window", "pass1")
  Merge merge = Merge::Sum;
  at::Tensor gate;     ///< Sum parts: [B, H|1, N_part] weight of the part's output per query; undefined: 1
  at::Tensor queries;  ///< int64 [N_part]: the site's queries that the part's are; undefined: 0..N_part-1
  at::Tensor keys;     ///< int64 [M_part]: the site's keys that the part's are; undefined: 0..M_part-1
  int64_t site_queries = 0;  ///< N of the site; 0: N_part
  int64_t site_keys = 0;     ///< M of the site; 0: M_part
};

/// What a map computed without attend() holds (the trace's site kind).
enum class MapKind {
  Channel,  ///< channel x channel weights (DLGSANet's sparse global attention: ReLU in place of softmax)
  Kernel,   ///< per-pixel kernels: rows are the token layout's pixels, columns the kernel's taps
};

class ProbeSet {
 public:
  virtual ~ProbeSet() = default;
  /// The probe for `site`, or nullptr to leave the site unobserved. Valid for the forward pass.
  virtual Probe* site(const std::string& name) = 0;
  /// The probe for one part of `site`; by default parts are not observed.
  virtual Probe* part(const std::string& site, const SitePart& part);
  /// A map of `site` computed without attend(): values [B, H, rows, columns]. Ignored by default.
  virtual void map(const std::string& site, MapKind kind, const at::Tensor& values);
};

/// For models: the probe of `name` when recording, else nullptr.
inline Probe* probe_for(ProbeSet* probes, const std::string& name) { return probes ? probes->site(name) : nullptr; }
inline Probe* probe_for(ProbeSet* probes, const std::string& site, const SitePart& part) {
  return probes ? probes->part(site, part) : nullptr;
}

}  // namespace sparsescope::vision
