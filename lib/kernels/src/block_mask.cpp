#include "sparsescope/kernels/block_mask.h"

#include <ATen/ATen.h>

#include "checks.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope {
namespace {

constexpr const char* kToBlockMaskPrefix = "sparsescope::to_block_mask: ";
constexpr const char* kFromBlockMaskPrefix = "sparsescope::from_block_mask: ";

// Scatters the listed blocks into [B|1, H|1, nq, num_k_blocks] (FlexAttention's
// _ordered_to_dense): entries past the count go to an extra column that is dropped.
at::Tensor listed_blocks(const at::Tensor& count, const at::Tensor& index, int64_t num_k_blocks) {
  const at::Tensor in_count = at::arange(index.size(-1), count.options()) < count.unsqueeze(-1);
  const at::Tensor columns = index.to(at::kLong).masked_fill(in_count.logical_not(), num_k_blocks);
  auto sizes = index.sizes().vec();
  sizes.back() = num_k_blocks + 1;
  return at::zeros(sizes, index.options().dtype(at::kBool))
      .scatter_(3, columns, true)
      .narrow(3, 0, num_k_blocks);
}

std::pair<at::Tensor, at::Tensor> ordered(const at::Tensor& blocks) {
  const at::Tensor as_int = blocks.to(at::kInt);
  return {as_int.sum(-1).to(at::kInt),
          at::argsort(as_int, /*stable=*/true, /*dim=*/-1, /*descending=*/true).to(at::kInt)};
}

}  // namespace

at::Tensor to_block_mask(const BlockSparse& pattern, int64_t num_k_blocks) {
  SPARSESCOPE_CHECK(num_k_blocks >= 0, kToBlockMaskPrefix, "expected num_k_blocks >= 0, got ",
                    num_k_blocks);
  // The pattern is checked as one over whole blocks, which its query-block rows imply.
  const at::Tensor& count = pattern.kv_count;
  const int64_t rows = count.defined() && count.dim() == 3 ? count.size(2) : 0;
  detail::check_pattern(kToBlockMaskPrefix, pattern, rows * pattern.block_q,
                        num_k_blocks * pattern.block_k);
  at::Tensor blocks = listed_blocks(pattern.kv_count, pattern.kv_index, num_k_blocks);
  if (pattern.full_kv_count.defined())
    blocks = blocks.logical_or(
        listed_blocks(pattern.full_kv_count, pattern.full_kv_index, num_k_blocks));
  return blocks;
}

BlockSparse from_block_mask(const at::Tensor& blocks, int64_t block_q, int64_t block_k,
                            const at::Tensor& full) {
  const char* prefix = kFromBlockMaskPrefix;
  const char* layout = "[B|1, H|1, nq, nk]";
  detail::check_defined(prefix, "blocks", blocks);
  if (full.defined()) detail::check_device(prefix, "full", full, blocks.device(), "the device of `blocks`");
  SPARSESCOPE_CHECK(blocks.scalar_type() == at::kBool, prefix, "expected `blocks` of dtype bool, got ",
                    c10::getDtypeNames(blocks.scalar_type()).first, " tensor ",
                    detail::shape_string(blocks.sizes()));
  SPARSESCOPE_CHECK(!full.defined() || full.scalar_type() == at::kBool, prefix,
                    "expected `full` of dtype bool, got ",
                    c10::getDtypeNames(full.scalar_type()).first, " tensor ",
                    detail::shape_string(full.sizes()));
  detail::check_strided(prefix, "blocks", blocks);
  if (full.defined()) detail::check_strided(prefix, "full", full);
  detail::check_dim(prefix, "blocks", blocks, 4, layout);
  SPARSESCOPE_CHECK(!full.defined() || full.sizes() == blocks.sizes(), prefix,
                    "expected `full` of the shape of `blocks` ", detail::shape_string(blocks.sizes()),
                    ", got ", detail::shape_string(full.sizes()));
  SPARSESCOPE_CHECK(block_q >= 1 && block_k >= 1, prefix,
                    "expected block sizes >= 1, got block_q = ", block_q, ", block_k = ", block_k);
  BlockSparse pattern;
  pattern.block_q = block_q;
  pattern.block_k = block_k;
  std::tie(pattern.kv_count, pattern.kv_index) = ordered(blocks);
  if (full.defined()) std::tie(pattern.full_kv_count, pattern.full_kv_index) = ordered(full);
  return pattern;
}

}  // namespace sparsescope
