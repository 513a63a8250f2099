// libFuzzer entry point over the metadata parser of trace files (trace_metadata.h). Malformed input
// must end in sparsescope::Error; anything else (a crash, a sanitizer report, another exception) is
// a bug. Accepted metadata must survive trace_metadata_json -> parse_trace_metadata unchanged, so
// that the reader accepts only what the writer can express.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/trace_metadata.h"

namespace sv = sparsescope::vision;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  sv::TraceMetadata metadata;
  try {
    metadata = sv::parse_trace_metadata(text, "fuzz");
  } catch (const sparsescope::Error&) {
    return 0;
  }
  const std::string written = sv::trace_metadata_json(metadata);
  if (sv::trace_metadata_json(sv::parse_trace_metadata(written, "fuzz")) != written) std::abort();
  return 0;
}
