#include <map>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/dlgsanet.h"

namespace sparsescope::vision {

namespace {

// options/DLGSANet_SISR/*.yml: sizes, and the TLC kernel per scale (the training LR patch is 48).
const std::map<std::string, std::array<int64_t, 3>>& sizes() {
  static const std::map<std::string, std::array<int64_t, 3>> table = {
      {"tiny", {48, 3, 3}}, {"light", {48, 4, 3}}, {"large", {90, 6, 4}}};  // dim, groups, blocks
  return table;
}

}  // namespace

std::vector<std::string> dlgsanet_config_names() {
  std::vector<std::string> names;
  for (const std::string size : {"tiny", "light", "large"}) {
    for (const char* scale : {"x2", "x3", "x4"}) names.push_back("dlgsanet_" + size + "_" + scale);
  }
  return names;
}

DlgsaConfig dlgsanet_config(const std::string& name) {
  for (const auto& [size, shape] : sizes()) {
    for (const int64_t scale : {2, 3, 4}) {
      if (name != "dlgsanet_" + size + "_x" + std::to_string(scale)) continue;
      DlgsaConfig c;
      c.name = name;
      c.scale = scale;
      c.dim = shape[0];
      c.groups = shape[1];
      c.blocks = shape[2];
      c.tlc_kernel = scale == 2 ? 96 : scale == 3 ? 72 : 48;
      return c;
    }
  }
  std::string known;
  for (const auto& n : dlgsanet_config_names()) known += (known.empty() ? "" : ", ") + n;
  SPARSESCOPE_FAIL("unknown DLGSANet configuration '", name, "' (known: ", known, ")");
}

}  // namespace sparsescope::vision
