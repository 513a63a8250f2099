#pragma once
// Tensors in and out of safetensors files (huggingface/safetensors format).
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace sparsescope::vision {

/// Named tensors in a meaningful order (file order when read, write order when written).
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct SafetensorsFile {
  NamedTensors tensors;                         // in the order of the file's header
  std::map<std::string, std::string> metadata;  // the `__metadata__` block
};

/// Reads a safetensors file after validating its whole header (sizes, dtypes, offsets, overlaps,
/// duplicates). Tensors whose data is aligned for their dtype (all of them in files written by
/// save_safetensors or Python's safetensors) are zero-copy views of a private copy-on-write
/// mapping of the file, kept alive by the tensors; writing to them never changes the file. The
/// file must not be truncated while they live (writers that replace files atomically, like this
/// library's and Python's, are safe). Others are copied. Supported dtypes: BOOL, U8/16/32/64,
/// I8/16/32/64, F16, BF16, F32, F64, C64 and the F8 variants; F4/F6 throw.
/// Throws sparsescope::Error naming the file and the tensor at fault.
SafetensorsFile load_safetensors(const std::string& path);

/// Same from bytes in memory; the tensors own copies. `name` names the source in errors.
SafetensorsFile load_safetensors(const void* data, std::size_t size, const std::string& name);

/// Writes `tensors` (any device, layout strided; saved as contiguous CPU copies) and `metadata`
/// through a temporary file in the same directory renamed into place, so a failed write leaves an
/// existing file untouched. The header keeps the given order; data is laid out widest dtype first
/// so every tensor is aligned for zero-copy reading, as the Python writer does.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace sparsescope::vision
