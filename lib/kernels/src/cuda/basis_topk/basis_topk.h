#pragma once
// Host entry point of the fused basis top-k selection (basis_topk.cu): raw pointers of contiguous
// float32 / int64 tensors, no ATen.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace sparsescope::cuda {

struct BasisTopkShape {
  int64_t rows = 0;   // B * H * R
  int64_t terms = 0;  // T, at most kBasisTopkMaxTerms
  int64_t slots = 0;  // S
  int64_t keys = 0;   // N
  int64_t k = 0;      // kept keys, 1 <= k <= N
};

constexpr int64_t kBasisTopkMaxTerms = 32;

/// Dynamic shared memory the kernel needs for N keys (each warp's scores and histogram).
int64_t basis_topk_smem_bytes(int64_t keys);

/// index[row, :k] = the k largest of values[row] . basis[slots[row]] (see basis_topk.h).
void basis_topk(const BasisTopkShape& s, const float* values, const int64_t* slots, const float* basis,
                int64_t* index, cudaStream_t stream);

}  // namespace sparsescope::cuda
