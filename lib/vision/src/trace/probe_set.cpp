#include "sparsescope/vision/probe_set.h"

namespace sparsescope::vision {

Probe* ProbeSet::part(const std::string&, const SitePart&) { return nullptr; }

void ProbeSet::map(const std::string&, MapKind, const at::Tensor&) {}

}  // namespace sparsescope::vision
