#pragma once
// The safetensors header codec, free of LibTorch so that the sanitizer and libFuzzer builds cover
// every check a file from outside goes through. The tensor layer (src/safetensors.cpp) only maps
// the validated byte ranges to at::Tensor.
//
// Format (huggingface/safetensors README, "Format"): 8 bytes little-endian u64 N, N bytes of UTF-8
// JSON starting with '{' (space padding allowed), then the data region. Rules enforced here, as in
// the reference reader (safetensors/src/tensor.rs `read_metadata`, `Metadata::validate`):
//   - N <= 100'000'000 and 8 + N <= file size;
//   - no duplicate keys; `__metadata__`, if present, maps strings to strings;
//   - every tensor has a known dtype, a shape of non-negative integers and data_offsets
//     [begin, end] with end - begin == prod(shape) * bits(dtype) / 8 (a whole number of bytes);
//   - sorted by offsets, the tensors tile the data region exactly: no overlap, no gap, no
//     trailing bytes (the spec forbids holes so that a file cannot be a polyglot).
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sparsescope::vision::io {

/// Element types of the format, spelled as in files ("F32"). F4 and F6_* pack several elements
/// per byte.
enum class Dtype {
  BOOL,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  F8_E4M3FNUZ,
  F8_E5M2FNUZ,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,
  F64,
  I64,
  U64,
  F4,
  F6_E2M3,
  F6_E3M2,
};

std::string_view dtype_name(Dtype dtype);
std::optional<Dtype> dtype_from_name(std::string_view name);
/// Bits per element (4 and 6 for the packed micro-scaling floats).
int dtype_bits(Dtype dtype);

/// Bytes that `shape` of `dtype` occupies; nullopt on overflow or a fraction of a byte.
std::optional<std::uint64_t> tensor_bytes(Dtype dtype, const std::vector<std::int64_t>& shape);

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<std::int64_t> shape;  // every dimension in [0, INT64_MAX]
  std::uint64_t begin = 0;          // byte range [begin, end) relative to the data region
  std::uint64_t end = 0;
};

struct Header {
  std::vector<TensorInfo> tensors;  // in the order of the JSON header
  std::map<std::string, std::string> metadata;
  std::uint64_t data_start = 0;  // absolute file offset of the data region (8 + N)
};

/// The reference reader's bound; larger headers are refused before any parsing.
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

/// Parses and validates the header of the whole file `bytes[0, size)`. `file` only names the
/// source in errors. Throws sparsescope::Error naming the file and, where one is at fault, the
/// tensor or metadata key.
Header parse_header(const void* bytes, std::size_t size, std::string_view file);

/// Lays the tensors' data out back to back, widest element first (stable otherwise), and sets
/// their begin/end. With the 8-byte-padded header of serialize_header this aligns every tensor
/// of a whole-byte dtype to its element size, which is what lets the reader map it zero-copy.
/// Returns the size of the data region. Throws if a tensor's byte size overflows.
std::uint64_t assign_offsets(std::vector<TensorInfo>& tensors, std::string_view file);

/// The 8-byte length followed by the compact JSON header, padded with spaces to a multiple of 8
/// bytes like the Python writer: `__metadata__` first (omitted when empty), then the tensors in
/// the given order. Throws on duplicate or reserved names and on names that are not UTF-8.
std::string serialize_header(const std::vector<TensorInfo>& tensors, const std::map<std::string, std::string>& metadata,
                             std::string_view file);

}  // namespace sparsescope::vision::io
