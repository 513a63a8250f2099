#pragma once
// IDX files, the array format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace sparsescope::vision {

/// Largest array read_idx accepts, in bytes: more than any MNIST-family file, less than a header
/// with corrupt dimensions would make it allocate.
inline constexpr std::size_t kMaxIdxBytes = std::size_t{1} << 31;

/// Reads an IDX file, plain or gzip-compressed (recognised by its content, not its name): magic
/// 00 00 <type> <rank>, big-endian uint32 dimensions, then the big-endian elements. Returns a CPU
/// tensor of the file's shape and type (uint8, int8, int16, int32, float32, float64) in host byte
/// order. Throws sparsescope::Error naming the file for a bad magic number, an unknown type, a
/// truncated header or body, trailing bytes, an array over kMaxIdxBytes and corrupt gzip data.
at::Tensor read_idx(const std::string& path);

/// Same from bytes in memory; `name` names the source in errors.
at::Tensor parse_idx(const std::uint8_t* data, std::size_t size, const std::string& name);

}  // namespace sparsescope::vision
