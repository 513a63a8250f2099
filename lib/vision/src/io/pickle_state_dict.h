#pragma once
// The pickle of a torch.save archive (data.pkl), read without LibTorch: an allowlist unpickler in
// the spirit of torch.load(weights_only=True) that yields the state dict's tensors as views of
// storage records (see Note [Reading .pth without torch::pickle_load] in pickle_state_dict.cpp).
// The archive's zip records are the caller's (state_dict.cpp reads them with LibTorch).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sparsescope::vision::io {

/// One entry of the state dict: a view (offset, sizes, strides, in elements) of the storage record
/// data/<storage>, whose element type the pickle names as `storage_type` ("torch.FloatStorage").
struct PickledTensor {
  std::string name;
  std::string storage;
  std::string storage_type;
  std::int64_t offset = 0;
  std::vector<std::int64_t> sizes, strides;
};

/// The element count of storage record `key` of type `storage_type`; throws sparsescope::Error when
/// the record is missing or the type unsupported. Called once per storage.
using StorageElements = std::function<std::int64_t(const std::string& key, const std::string& storage_type)>;

/// Reads the pickle `data` (data.pkl of the archive `path`, which errors name) and returns the state
/// dict's entries in their stored order, after unwrapping checkpoint nesting (the first of
/// "model", "state_dict", "params_ema", "params" holding a dict, while the dict is not all tensors).
/// Every view is checked against its storage's element count. Throws sparsescope::Error for a
/// malformed pickle, non-string keys, non-tensor entries and duplicate keys.
std::vector<PickledTensor> read_state_dict_pickle(const char* data, std::size_t size, const std::string& path,
                                                  const StorageElements& storage_elements);

}  // namespace sparsescope::vision::io
