#include "sparsescope/vlm/clip_trace.h"

#include "sparsescope/vision/trace.h"

namespace sparsescope::vlm {

vision::TraceInfo clip_trace_info(const ClipConfig& config, const std::string& input) {
  vision::TraceInfo info;
  info.model = config.name;
  info.method = "dense";
  info.input = input;
  const int64_t grid = config.image_size / config.patch_size;
  info.layout.prefix = 1;
  info.layout.grid = {1, grid, grid};
  info.layout.segments = {{"prefix", 0, 1}, {"image", 1, info.layout.tokens()}};
  info.producer = vision::trace_producer();
  return info;
}

}  // namespace sparsescope::vlm
