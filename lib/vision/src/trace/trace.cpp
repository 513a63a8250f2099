#include "sparsescope/vision/trace.h"

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

const SiteTrace& Trace::site(const std::string& name) const {
  std::string names;
  for (const auto& s : sites) {
    if (s.name == name) return s;
    names += (names.empty() ? "" : ", ") + s.name;
  }
  SPARSESCOPE_FAIL("the trace has no site '", name, "' (it has ", names.empty() ? "none" : names, ")");
}

}  // namespace sparsescope::vision
