#pragma once
// Which keys a query sees: the one definition shared by materialize(), the reference backend and
// the fused kernels (STYLE.md 7, after NATTEN's NeighborhoodAttentionReferenceMask). Plain integer
// functions on token coordinates, callable from host and device code; no tensors.
#include <cstdint>

#if defined(__CUDACC__)
#define SPARSESCOPE_HOST_DEVICE __host__ __device__
#else
#define SPARSESCOPE_HOST_DEVICE
#endif

namespace sparsescope::mask {

/// Dense causal masks are top-left aligned (SDPA's is_causal, FlexAttention's causal mask_mod),
/// also when M != N.
SPARSESCOPE_HOST_DEVICE constexpr bool causal_visible(int64_t query, int64_t key) {
  return key <= query;
}

/// The block holding a token, for BlockSparse queries and keys alike.
SPARSESCOPE_HOST_DEVICE constexpr int64_t block_of(int64_t token, int64_t block_size) {
  return token / block_size;
}

/// The tokens of `block` that exist in a sequence of `length`: [begin, end); the last block of a
/// sequence that is not a multiple of the block size is short.
struct TokenRange {
  int64_t begin;
  int64_t end;
};
SPARSESCOPE_HOST_DEVICE constexpr TokenRange block_tokens(int64_t block, int64_t block_size,
                                                         int64_t length) {
  const int64_t begin = block * block_size;
  const int64_t end = begin + block_size < length ? begin + block_size : length;
  return {begin, end};
}

/// TopK lists pad with this value.
constexpr int64_t kNoKey = -1;

/// The keys one query sees along one Neighborhood axis: `count` coordinates first, first + step, ...
struct AxisWindow {
  int64_t first;
  int64_t count;
  int64_t step;
};

/// NATTEN's window along one axis of `length` (NATTEN's reference mask with stride 1). Dilation
/// splits the axis into `dilation` interleaved groups (coordinates equal modulo dilation), and
/// the window is computed inside the query's group, whose length is ceil((length - group) /
/// dilation). Non-causal: kernel / 2 keys to the left and kernel / 2 + kernel % 2 - 1 to the right,
/// shifted inward at the borders so the window always holds `kernel` keys (needs
/// kernel * dilation <= length, which makes every group at least `kernel` long). Causal: the
/// query and up to kernel - 1 keys before it.
SPARSESCOPE_HOST_DEVICE constexpr AxisWindow neighborhood_window(int64_t index, int64_t length,
                                                                int64_t kernel, int64_t dilation,
                                                                bool causal) {
  const int64_t group = index % dilation;
  const int64_t pos = index / dilation;
  const int64_t group_length = (length - group + dilation - 1) / dilation;
  int64_t begin = 0;
  int64_t end = 0;
  if (causal) {
    begin = pos - (kernel - 1) > 0 ? pos - (kernel - 1) : 0;
    end = pos + 1;
  } else {
    const int64_t left = kernel / 2;
    const int64_t right = kernel / 2 + kernel % 2 - 1;
    begin = pos - left > 0 ? pos - left : 0;
    if (pos + right >= group_length) begin += group_length - right - pos - 1;
    end = begin + kernel;
  }
  return {group + begin * dilation, end - begin, dilation};
}

SPARSESCOPE_HOST_DEVICE constexpr bool neighborhood_visible(int64_t query, int64_t key,
                                                            int64_t length, int64_t kernel,
                                                            int64_t dilation, bool causal) {
  const AxisWindow w = neighborhood_window(query, length, kernel, dilation, causal);
  return key >= w.first && (key - w.first) % w.step == 0 && (key - w.first) / w.step < w.count;
}

}  // namespace sparsescope::mask
