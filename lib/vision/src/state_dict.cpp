// .pth files: LibTorch's zip reader (caffe2::serialize::PyTorchStreamReader) for the archive, the
// LibTorch-free unpickler of io/pickle_state_dict.h for data.pkl (LibTorch's own cannot read
// OrderedDict state dicts), and the storage records as CPU tensors that the views share.
#include "sparsescope/vision/state_dict.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <string_view>
#include <vector>

#include "pickle_state_dict.h"
#include "regular_file.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

constexpr std::string_view kZipMagic("PK\x03\x04", 4);
// The pickle protocol opcode that legacy (pre-1.6) torch.save files start with.
constexpr unsigned char kPickleProto = 0x80;

// The dtype of a storage type of the pickle ("torch.FloatStorage" -> at::kFloat).
at::ScalarType storage_dtype(const std::string& type, const std::string& path) {
  constexpr std::string_view prefix = "torch.";
  constexpr std::string_view suffix = "Storage";
  if (type.size() > prefix.size() + suffix.size() && type.compare(0, prefix.size(), prefix) == 0 &&
      type.compare(type.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const std::string name = type.substr(prefix.size(), type.size() - prefix.size() - suffix.size());
    for (int i = 0; i < static_cast<int>(at::ScalarType::NumOptions); ++i) {
      const auto dtype = static_cast<at::ScalarType>(i);
      if (name == c10::toString(dtype) && !at::isQIntType(dtype)) return dtype;
    }
  }
  SPARSESCOPE_FAIL("checkpoint '", path, "': data.pkl: unsupported storage type ", type);
}

}  // namespace

NamedTensors load_pth_state_dict(const std::string& path) {
  io::require_regular_file(path, "checkpoint");
  std::array<char, 4> magic{};
  {
    std::ifstream in(path, std::ios::binary);
    SPARSESCOPE_CHECK(in.is_open(), "cannot open checkpoint '", path, "': ", std::strerror(errno));
    in.read(magic.data(), magic.size());
    SPARSESCOPE_CHECK(!(in.gcount() >= 1 && static_cast<unsigned char>(magic[0]) == kPickleProto), "checkpoint '", path,
                      "': legacy (pre-1.6, non-zip) torch.save format, which LibTorch cannot read; re-save it with "
                      "torch.save(torch.load(f), f) in a current PyTorch");
    SPARSESCOPE_CHECK(in.gcount() == 4 && std::string_view(magic.data(), 4) == kZipMagic, "checkpoint '", path,
                      "': not a torch.save zip archive (no \"PK\\x03\\x04\" signature)");
  }

  NamedTensors out;
  try {
    caffe2::serialize::PyTorchStreamReader zip(path);
    SPARSESCOPE_CHECK(zip.hasRecord("data.pkl"), "checkpoint '", path,
                      "': the zip archive has no data.pkl (not written by torch.save; a TorchScript archive?)");
    auto [data, size] = zip.getRecord("data.pkl");
    // Each storage record once, as a 1-D tensor over all of it that the views share.
    std::map<std::string, at::Tensor> storages;
    const auto load_storage = [&](const std::string& key, const std::string& type) -> std::int64_t {
      const at::ScalarType dtype = storage_dtype(type, path);
      const std::string record = "data/" + key;
      SPARSESCOPE_CHECK(zip.hasRecord(record), "checkpoint '", path, "': data.pkl: storage record '", record,
                        "' is missing from the archive");
      auto [bytes, nbytes] = zip.getRecord(record);
      const std::size_t item = at::elementSize(dtype);
      SPARSESCOPE_CHECK(nbytes % item == 0, "checkpoint '", path, "': data.pkl: storage record '", record, "' of ",
                        nbytes, " bytes is not a whole number of ", c10::toString(dtype), " elements");
      at::Storage storage(at::Storage::use_byte_size_t(), nbytes, std::move(bytes), nullptr, false);
      const auto elements = static_cast<std::int64_t>(nbytes / item);
      storages[key] = at::empty({0}, at::TensorOptions().dtype(dtype)).set_(storage, 0, {elements}, {1});
      return elements;
    };
    const auto entries =
        io::read_state_dict_pickle(static_cast<const char*>(data.get()), size, path, load_storage);
    for (const io::PickledTensor& t : entries) {
      const at::Tensor& storage = storages.at(t.storage);
      out.emplace_back(t.name, at::empty({0}, storage.options()).set_(storage.storage(), t.offset, t.sizes, t.strides));
    }
  } catch (const c10::Error& e) {
    SPARSESCOPE_FAIL("checkpoint '", path, "': corrupt torch.save archive: ", e.what_without_backtrace());
  }
  return out;
}

bool is_torch_save(const std::string& path) {
  io::require_regular_file(path, "weights file");
  std::ifstream in(path, std::ios::binary);
  SPARSESCOPE_CHECK(in.is_open(), "cannot open weights file '", path, "': ", std::strerror(errno));
  std::array<char, 9> magic{};
  in.read(magic.data(), magic.size());
  const bool zip = in.gcount() >= 4 && std::string_view(magic.data(), 4) == kZipMagic;
  // A legacy torch.save file goes to the .pth reader too, for its specific error message. A
  // safetensors file can start with the same byte (a header length of 128 + 256 k) but has its
  // JSON header's '{' at byte 8.
  const bool legacy_pickle = in.gcount() >= 1 && static_cast<unsigned char>(magic[0]) == kPickleProto &&
                             !(in.gcount() == 9 && magic[8] == '{');
  return zip || legacy_pickle;
}

NamedTensors load_state_dict(const std::string& path) {
  return is_torch_save(path) ? load_pth_state_dict(path) : load_safetensors(path).tensors;
}

NamedTensors cast_floating(NamedTensors tensors, at::ScalarType dtype) {
  for (auto& [name, tensor] : tensors) {
    if (at::isFloatingType(tensor.scalar_type())) tensor = tensor.to(dtype);
  }
  return tensors;
}

}  // namespace sparsescope::vision
