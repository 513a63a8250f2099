#pragma once
// The value formulas of scripts/fixtures/make_tensor_fixtures.py (`values`), recomputed with ATen
// so the tests compare the fixtures bit for bit. Keep the two in step.
#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>
#include <vector>

namespace sparsescope::testing {

/// The folder of the tensor fixtures (safetensors and .pth files) the script writes.
inline const std::filesystem::path kTensorFixtures = std::filesystem::path(SPARSESCOPE_FIXTURES_DIR) / "tensors";

inline at::Tensor fixture_values(at::ScalarType dtype, const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (const auto s : shape) n *= s;
  const at::Tensor i = at::arange(n, at::kLong);
  at::Tensor v;
  if (at::isFloatingType(dtype)) {
    v = (i.to(at::kDouble) * 0.37 - 2.5).to(dtype);
  } else if (dtype == at::kBool) {
    v = i.remainder(3).eq(0);
  } else if (dtype == at::kByte) {
    v = (i * 37).remainder(256).to(dtype);
  } else if (dtype == at::kChar) {
    v = ((i * 37).remainder(256) - 128).to(dtype);
  } else if (dtype == at::kShort) {
    v = (i * 1237 - 20000).to(dtype);
  } else if (dtype == at::kInt) {
    v = (i * 100003 - 1000000).to(dtype);
  } else {
    v = (i * 1000000000000LL - 3).to(dtype);
  }
  return v.reshape(shape);
}

/// Same dtype, shape and bytes (at::equal lacks kernels for some dtypes, e.g. float8).
inline bool same_tensor(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const at::Tensor ca = a.contiguous();
  const at::Tensor cb = b.contiguous();
  return ca.nbytes() == 0 || std::memcmp(ca.const_data_ptr(), cb.const_data_ptr(), ca.nbytes()) == 0;
}

}  // namespace sparsescope::testing
