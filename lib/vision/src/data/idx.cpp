#include "sparsescope/vision/idx.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <vector>

#include "sparsescope/vision/gunzip.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "parse_idx converts big-endian data for little-endian hosts");

namespace {

struct IdxType {
  at::ScalarType dtype;
  std::size_t bytes;
  const char* name;
};

bool idx_type(std::uint8_t code, IdxType* type) {
  switch (code) {
    case 0x08: *type = {at::kByte, 1, "uint8"}; return true;
    case 0x09: *type = {at::kChar, 1, "int8"}; return true;
    case 0x0b: *type = {at::kShort, 2, "int16"}; return true;
    case 0x0c: *type = {at::kInt, 4, "int32"}; return true;
    case 0x0d: *type = {at::kFloat, 4, "float32"}; return true;
    case 0x0e: *type = {at::kDouble, 8, "float64"}; return true;
    default: return false;
  }
}

std::uint32_t be32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | std::uint32_t{p[3]};
}

}  // namespace

at::Tensor parse_idx(const std::uint8_t* data, std::size_t size, const std::string& name) {
  if (is_gzip(data, size)) {
    const std::vector<std::uint8_t> plain = gunzip(data, size, name, kMaxIdxBytes + 4 + 4 * 255);
    return parse_idx(plain.data(), plain.size(), name);
  }
  SPARSESCOPE_CHECK(size >= 4, "'", name, "': IDX file of ", size, " bytes is truncated (the magic number takes 4)");
  SPARSESCOPE_CHECK(data[0] == 0 && data[1] == 0, "'", name, "' is not an IDX file (magic number starts ",
                    int{data[0]}, " ", int{data[1]}, ", expected 0 0)");
  IdxType type;
  SPARSESCOPE_CHECK(idx_type(data[2], &type), "'", name, "': unknown IDX element type 0x", std::hex, int{data[2]},
                    std::dec, " (known: 0x08 uint8, 0x09 int8, 0x0b int16, 0x0c int32, 0x0d float32, 0x0e float64)");
  const std::size_t rank = data[3];
  SPARSESCOPE_CHECK(rank >= 1, "'", name, "': IDX array of rank 0");
  const std::size_t header = 4 + 4 * rank;
  SPARSESCOPE_CHECK(size >= header, "'", name, "': IDX header of ", rank, " dimensions needs ", header,
                    " bytes, the file has ", size, " (truncated)");
  std::vector<int64_t> shape;
  std::size_t count = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    const std::uint32_t extent = be32(data + 4 + 4 * d);
    shape.push_back(extent);
    // Checked before multiplying, so the product cannot overflow.
    SPARSESCOPE_CHECK(extent == 0 || count <= kMaxIdxBytes / type.bytes / extent, "'", name, "': IDX array ",
                      at::IntArrayRef(shape), "... of ", type.name, " exceeds ", kMaxIdxBytes, " bytes");
    count *= extent;
  }
  const std::size_t body = count * type.bytes;
  SPARSESCOPE_CHECK(size - header >= body, "'", name, "': IDX array ", at::IntArrayRef(shape), " of ", type.name,
                    " needs ", body, " bytes of data, the file has ", size - header, " (truncated)");
  SPARSESCOPE_CHECK(size - header == body, "'", name, "': IDX array ", at::IntArrayRef(shape), " of ", type.name,
                    " needs ", body, " bytes of data, the file has ", size - header, " (", size - header - body,
                    " trailing bytes)");
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(type.dtype));
  auto* dst = static_cast<std::uint8_t*>(out.data_ptr());
  const std::uint8_t* src = data + header;
  if (type.bytes == 1) {
    std::memcpy(dst, src, body);
  } else {
    for (std::size_t i = 0; i < count; ++i) {  // big-endian elements to host (little-endian) order
      std::reverse_copy(src + i * type.bytes, src + (i + 1) * type.bytes, dst + i * type.bytes);
    }
  }
  return out;
}

at::Tensor read_idx(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  SPARSESCOPE_CHECK(in.is_open(), "cannot open IDX file '", path, "'");
  const std::streamoff size = in.tellg();
  SPARSESCOPE_CHECK(size >= 0, "cannot read IDX file '", path, "'");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  SPARSESCOPE_CHECK(in.good() || size == 0, "cannot read IDX file '", path, "'");
  return parse_idx(bytes.data(), bytes.size(), path);
}

}  // namespace sparsescope::vision
