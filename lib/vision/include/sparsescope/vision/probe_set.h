#pragma once
// A forward pass names each of its attention sites ("blocks.3.attn") and asks the ProbeSet for
// that site's probe, which attend() then calls. The recorder is the ProbeSet users meet.
#include <string>

#include "sparsescope/kernels/probe.h"

namespace sparsescope::vision {

class ProbeSet {
 public:
  virtual ~ProbeSet() = default;
  /// The probe for `site`, or nullptr to leave the site unobserved. Valid for the forward pass.
  virtual Probe* site(const std::string& name) = 0;
};

/// For models: the probe of `name` when recording, else nullptr.
inline Probe* probe_for(ProbeSet* probes, const std::string& name) { return probes ? probes->site(name) : nullptr; }

}  // namespace sparsescope::vision
