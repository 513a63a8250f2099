#include "stats_csv.h"

#include <ATen/ATen.h>

#include <cmath>
#include <iomanip>
#include <sstream>

#include "sparsescope/vision/atomic_file.h"

namespace sparsescope::viewer {

namespace {

void write_value(std::ostream& out, float v) {
  if (std::isnan(v)) {
    out << "nan";
  } else {
    out << std::setprecision(7) << v;
  }
}

}  // namespace

std::string stats_csv(const vision::Trace& trace) {
  std::ostringstream out;
  out << "site,layer,head,recall,density,entropy\n";
  for (size_t l = 0; l < trace.sites.size(); ++l) {
    const auto& site = trace.sites[l];
    if (!site.stats.defined()) continue;
    const at::Tensor stats = site.stats.to(at::kFloat).cpu().contiguous();  // [H, kStatColumns]
    const float* p = stats.data_ptr<float>();
    for (int64_t h = 0; h < stats.size(0); ++h) {
      out << site.name << ',' << l << ',' << h;
      for (int64_t c : {vision::kRecall, vision::kDensity, vision::kEntropy}) {
        out << ',';
        write_value(out, p[h * stats.size(1) + c]);
      }
      out << '\n';
    }
  }
  return out.str();
}

void write_stats_csv(const vision::Trace& trace, const std::string& path) {
  const std::string text = stats_csv(trace);
  vision::write_file_atomically(path, text.data(), text.size());
}

}  // namespace sparsescope::viewer
