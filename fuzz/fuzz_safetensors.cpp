// libFuzzer entry point over the LibTorch-free safetensors header codec. Malformed input must end
// in sparsescope::Error; anything else (a crash, a sanitizer report, another exception) is a bug.
// An accepted header must survive serialize_header -> parse_header unchanged, which checks that
// the reader only accepts what the writer can express and vice versa.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "safetensors_format.h"
#include "sparsescope/kernels/error.h"

namespace io = sparsescope::vision::io;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  io::Header header;
  try {
    header = io::parse_header(data, size, "fuzz.safetensors");
  } catch (const sparsescope::Error&) {
    return 0;
  }
  const std::uint64_t data_size = size - header.data_start;
  const std::string prefix = io::serialize_header(header.tensors, header.metadata, "fuzz.safetensors");
  std::string file = prefix;
  file.append(reinterpret_cast<const char*>(data) + header.data_start, data_size);
  const io::Header again = io::parse_header(file.data(), file.size(), "fuzz.safetensors");
  if (again.metadata != header.metadata || again.tensors.size() != header.tensors.size() ||
      again.data_start != prefix.size()) {
    std::abort();
  }
  for (std::size_t i = 0; i < header.tensors.size(); ++i) {
    const io::TensorInfo& a = header.tensors[i];
    const io::TensorInfo& b = again.tensors[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.begin != b.begin || a.end != b.end) {
      std::abort();
    }
  }
  return 0;
}
