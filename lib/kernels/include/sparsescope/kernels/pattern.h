#pragma once
// The sparsity patterns that attend() understands (DESIGN.md section 3): small value types whose
// tensors say which keys each query sees. Shapes use B batch, H heads, N queries, M keys.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <variant>
#include <vector>

namespace sparsescope {

/// Every query sees every key, optionally restricted by a top-left causal mask (key <= query, as
/// SDPA's is_causal and FlexAttention's causal mask_mod) and by an SDPA-style `mask`
/// [B|1, H|1, N, M]: bool (true = keep) or an additive bias of the query dtype (-inf drops the key;
/// gradients flow into it).
struct Dense {
  bool causal = false;
  std::optional<double> scale;  ///< default 1/sqrt(D)
  at::Tensor mask;              ///< undefined = no mask
};

/// FlexAttention's BlockMask layout with BLOCK_SIZE = (block_q, block_k): query block r of head
/// (b, h) sees the key blocks kv_index[b, h, r, :kv_count[b, h, r]] and, when given, the blocks
/// full_kv_index[b, h, r, :full_kv_count[b, h, r]]. Without a mask_mod both kinds are wholly visible,
/// so the set seen is their union; they are kept apart so that masks convert to and from
/// FlexAttention exactly. Entries past a count are ignored; a block listed twice counts once; keys
/// past M in the last block do not exist.
struct BlockSparse {
  int64_t block_q = 128;
  int64_t block_k = 128;
  at::Tensor kv_count;       ///< [B|1, H|1, ceil(N / block_q)] int32
  at::Tensor kv_index;       ///< [B|1, H|1, ceil(N / block_q), W] int32, values in [0, ceil(M / block_k))
  at::Tensor full_kv_count;  ///< optional, laid out as kv_count
  at::Tensor full_kv_index;  ///< optional, laid out as kv_index (any width)
  std::optional<double> scale;
};

/// Per-query key lists: query n of head (b, h) sees the keys index[b, h, n, :]. -1 pads a short
/// list; a key listed twice counts once (set semantics, so TopK equals dense attention over its
/// materialize() mask).
struct TopK {
  at::Tensor index;  ///< [B|1, H|1, N, K] int64, values in [-1, M)
  std::optional<double> scale;
};

/// NATTEN neighborhood attention on tokens laid out row-major on a grid (T, H, W), self-attention
/// only (N = M = product of the grid). Per axis, a query sees `kernel` keys of its own dilation
/// group (keys whose coordinate is congruent to its own modulo `dilation`), the window centred on it
/// (kernel / 2 to the left) and shifted inward at the borders, so that every query sees exactly
/// `kernel` keys per axis; a causal axis sees the query and the kernel - 1 keys before it instead.
struct Neighborhood {
  std::vector<int64_t> grid;      ///< 1 to 3 extents
  std::vector<int64_t> kernel;    ///< per axis, kernel >= 1 and kernel * dilation <= extent
  std::vector<int64_t> dilation;  ///< per axis; empty = 1 on every axis
  std::vector<bool> causal;       ///< per axis; empty = no causal axis
  std::optional<double> scale;
};

struct Permuted;
using Pattern = std::variant<Dense, BlockSparse, TopK, Neighborhood, Permuted>;

/// Runs `inner` on permuted tokens: position a of the inner problem holds query perm[a] and key/value
/// kv_perm[a]; the inner pattern's indices refer to those positions, and output row a goes back to
/// query perm[a]. Queries and keys share `perm` unless `kv_perm` is given (cross-attention, or
/// clustering keys apart from queries).
struct Permuted {
  at::Tensor perm;     ///< [B|1, H|1, N] int64, a permutation of 0..N-1 per (b, h)
  at::Tensor inverse;  ///< [B|1, H|1, N] int64, inverse[perm[a]] = a
  at::Tensor kv_perm;  ///< [B|1, H|1, M] int64; undefined = perm (needs M = N)
  std::shared_ptr<const Pattern> inner;
};

/// Permuted{perm, inverse, kv_perm, inner} without spelling out the shared pointer.
Permuted permuted(at::Tensor perm, at::Tensor inverse, Pattern inner, at::Tensor kv_perm = {});

/// The scale the pattern asks for; std::nullopt means 1/sqrt(D). Permuted answers for its inner.
std::optional<double> scale_of(const Pattern& pattern);

/// "dense", "block_sparse", "topk", "neighborhood" or "permuted", for reports and traces.
const char* kind_name(const Pattern& pattern);

}  // namespace sparsescope
