// Note [safetensors zero-copy]
// The header is validated by the LibTorch-free core (io/safetensors_format.cpp); here the byte
// ranges become tensors. The file is mapped MAP_PRIVATE with write permission: tensors can be
// modified in place like any other (pages are copied on first write, the file never changes), and
// each tensor's deleter holds a shared_ptr to the mapping, so the mapping outlives the
// SafetensorsFile and goes away with the last tensor. A tensor whose data is not aligned for its
// element type (possible in files from other writers) is copied, because ATen kernels assume
// aligned data.
#include "sparsescope/vision/safetensors.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>

#include "regular_file.h"
#include "safetensors_format.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/atomic_file.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors stores little-endian data; a big-endian host would need byte swapping");

namespace sparsescope::vision {

namespace {

struct DtypePair {
  io::Dtype file;
  at::ScalarType aten;
};

// As safetensors/torch.py `_TYPES`, minus the packed F4/F6 types that have no plain ATen dtype.
constexpr DtypePair kDtypes[] = {
    {io::Dtype::F64, at::kDouble},
    {io::Dtype::F32, at::kFloat},
    {io::Dtype::F16, at::kHalf},
    {io::Dtype::BF16, at::kBFloat16},
    {io::Dtype::I64, at::kLong},
    {io::Dtype::I32, at::kInt},
    {io::Dtype::I16, at::kShort},
    {io::Dtype::I8, at::kChar},
    {io::Dtype::U8, at::kByte},
    {io::Dtype::BOOL, at::kBool},
    {io::Dtype::U16, at::kUInt16},
    {io::Dtype::U32, at::kUInt32},
    {io::Dtype::U64, at::kUInt64},
    {io::Dtype::C64, at::kComplexFloat},
    {io::Dtype::F8_E5M2, at::kFloat8_e5m2},
    {io::Dtype::F8_E4M3, at::kFloat8_e4m3fn},
    {io::Dtype::F8_E5M2FNUZ, at::kFloat8_e5m2fnuz},
    {io::Dtype::F8_E4M3FNUZ, at::kFloat8_e4m3fnuz},
    {io::Dtype::F8_E8M0, at::kFloat8_e8m0fnu},
};

std::optional<at::ScalarType> to_aten(io::Dtype dtype) {
  for (const auto& p : kDtypes) {
    if (p.file == dtype) return p.aten;
  }
  return std::nullopt;
}

std::optional<io::Dtype> to_file(at::ScalarType dtype) {
  for (const auto& p : kDtypes) {
    if (p.aten == dtype) return p.file;
  }
  return std::nullopt;
}

class Mapping {
 public:
  Mapping(void* base, std::size_t size) : base_(base), size_(size) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { ::munmap(base_, size_); }
  const unsigned char* bytes() const { return static_cast<const unsigned char*>(base_); }

 private:
  void* base_;
  std::size_t size_;
};

// `keep` is the mapping that `bytes` lies in, or null when the caller's buffer may not outlive
// the tensors (then every tensor is copied).
SafetensorsFile make_tensors(const io::Header& header, const unsigned char* bytes, const std::shared_ptr<Mapping>& keep,
                             const std::string& file) {
  SafetensorsFile out;
  out.metadata = header.metadata;
  out.tensors.reserve(header.tensors.size());
  for (const io::TensorInfo& info : header.tensors) {
    const auto dtype = to_aten(info.dtype);
    SPARSESCOPE_CHECK(dtype.has_value(), "safetensors file '", file, "': tensor '", info.name, "': dtype ",
                      io::dtype_name(info.dtype), " has no LibTorch equivalent supported here");
    const unsigned char* data = bytes + header.data_start + info.begin;
    const std::size_t nbytes = info.end - info.begin;
    if (*dtype == at::kBool) {
      // ATen assumes bools are 0 or 1; other bytes make comparisons and reductions disagree.
      const auto* bad = std::find_if(data, data + nbytes, [](unsigned char b) { return b > 1; });
      SPARSESCOPE_CHECK(bad == data + nbytes, "safetensors file '", file, "': tensor '", info.name,
                        "': BOOL data holds byte value ", static_cast<int>(*bad), " at element ", bad - data,
                        " (only 0 and 1 are valid)");
    }
    const auto options = at::TensorOptions().dtype(*dtype);
    const bool aligned = reinterpret_cast<std::uintptr_t>(data) % at::elementSize(*dtype) == 0;
    at::Tensor tensor;
    if (keep && nbytes > 0 && aligned) {
      tensor = at::from_blob(
          const_cast<unsigned char*>(data), info.shape, [keep](void*) {}, options);
    } else {
      tensor = at::empty(info.shape, options);
      if (nbytes > 0) std::memcpy(tensor.data_ptr(), data, nbytes);
    }
    out.tensors.emplace_back(info.name, std::move(tensor));
  }
  return out;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  io::require_regular_file(path, "safetensors file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  SPARSESCOPE_CHECK(fd >= 0, "cannot open safetensors file '", path, "': ", std::strerror(errno));
  struct stat st {};
  const int stat_rc = ::fstat(fd, &st);
  const int stat_errno = errno;
  if (stat_rc != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    SPARSESCOPE_CHECK(stat_rc == 0, "cannot stat safetensors file '", path, "': ", std::strerror(stat_errno));
    SPARSESCOPE_FAIL("safetensors file '", path, "': not a regular file");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    io::parse_header("", 0, path);  // throws: too short
  }
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  SPARSESCOPE_CHECK(base != MAP_FAILED, "cannot map safetensors file '", path, "': ", std::strerror(map_errno));
  const auto mapping = std::make_shared<Mapping>(base, size);
  const io::Header header = io::parse_header(mapping->bytes(), size, path);
  return make_tensors(header, mapping->bytes(), mapping, path);
}

SafetensorsFile load_safetensors(const void* data, std::size_t size, const std::string& name) {
  const io::Header header = io::parse_header(data, size, name);
  return make_tensors(header, static_cast<const unsigned char*>(data), nullptr, name);
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<io::TensorInfo> infos;
  std::vector<at::Tensor> cpu;
  infos.reserve(tensors.size());
  cpu.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const std::string at = "cannot write safetensors file '" + path + "': tensor '" + name + "': ";
    SPARSESCOPE_CHECK(tensor.defined(), at, "undefined tensor");
    SPARSESCOPE_CHECK(tensor.layout() == at::kStrided, at, "layout ", tensor.layout(),
                      " cannot be stored (only dense tensors)");
    const auto dtype = to_file(tensor.scalar_type());
    SPARSESCOPE_CHECK(dtype.has_value(), at, "dtype ", tensor.scalar_type(), " cannot be stored in safetensors");
    try {
      cpu.push_back(tensor.detach().to(at::kCPU).resolve_conj().resolve_neg().contiguous());
    } catch (const c10::Error& e) {
      SPARSESCOPE_FAIL(at, "cannot copy to the CPU: ", e.what_without_backtrace());
    }
    infos.push_back({name, *dtype, tensor.sizes().vec(), 0, 0});
  }
  io::assign_offsets(infos, path);
  const std::string header = io::serialize_header(infos, metadata, path);

  std::vector<std::size_t> order(infos.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return infos[a].begin < infos[b].begin; });
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const std::size_t i : order) {
      const at::Tensor& t = cpu[i];
      if (t.nbytes() == 0) continue;
      out.write(static_cast<const char*>(t.const_data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    }
  });
}

}  // namespace sparsescope::vision
