// libFuzzer entry point over the LibTorch-free unpickler of torch.save's data.pkl
// (io/pickle_state_dict.h). Malformed input must end in sparsescope::Error; anything else (a crash,
// a sanitizer report, another exception) is a bug. Every accepted tensor must be a view inside its
// storage and every name unique. Seeds: data.pkl of the .pth fixtures (tests/fixtures/tensors).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "pickle_state_dict.h"
#include "sparsescope/kernels/error.h"

namespace io = sparsescope::vision::io;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Storages of a few types, sized from their key, as the archive's records would be.
  std::map<std::string, std::int64_t> elements;
  const io::StorageElements storage = [&](const std::string& key, const std::string& type) -> std::int64_t {
    if (type != "torch.FloatStorage" && type != "torch.HalfStorage" && type != "torch.LongStorage" &&
        type != "torch.BoolStorage") {
      SPARSESCOPE_FAIL("unsupported storage type ", type);
    }
    const std::int64_t n = static_cast<std::int64_t>(std::hash<std::string>{}(key) % 4096);
    elements[key] = n;
    return n;
  };
  std::vector<io::PickledTensor> tensors;
  try {
    tensors = io::read_state_dict_pickle(reinterpret_cast<const char*>(data), size, "fuzz.pth", storage);
  } catch (const sparsescope::Error&) {
    return 0;
  }
  std::set<std::string> names;
  for (const io::PickledTensor& t : tensors) {
    if (!names.insert(t.name).second || !elements.count(t.storage) || t.sizes.size() != t.strides.size()) std::abort();
    std::int64_t last = t.offset;
    bool empty = false;
    for (std::size_t d = 0; d < t.sizes.size(); ++d) {
      if (t.sizes[d] < 0 || t.strides[d] < 0) std::abort();
      empty = empty || t.sizes[d] == 0;
      if (t.sizes[d] > 0) last += (t.sizes[d] - 1) * t.strides[d];
    }
    if (t.offset < 0 || (!empty && last >= elements.at(t.storage))) std::abort();
  }
  return 0;
}
