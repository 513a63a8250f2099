#pragma once
// The per-head statistics of a trace as CSV, one line per (site, head):
//   site,layer,head,recall,density,entropy
// NaN (recall without a dense comparison) is written as "nan", which pandas and numpy read back.
#include <string>

#include "sparsescope/vision/trace.h"

namespace sparsescope::viewer {

std::string stats_csv(const vision::Trace& trace);

/// Writes stats_csv(trace) through a temporary file renamed into place; throws sparsescope::Error
/// naming `path` and the cause.
void write_stats_csv(const vision::Trace& trace, const std::string& path);

}  // namespace sparsescope::viewer
