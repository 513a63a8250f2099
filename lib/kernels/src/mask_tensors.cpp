#include "mask_tensors.h"

#include <ATen/ATen.h>

#include <vector>

#include "mask.h"

namespace sparsescope::detail {
namespace {

struct Axis {
  int64_t extent, kernel, dilation;
  bool causal;
};

std::vector<Axis> axes_of(const Neighborhood& p) {
  std::vector<Axis> axes;
  for (size_t i = 0; i < p.grid.size(); ++i)
    axes.push_back({p.grid[i], p.kernel[i], p.dilation.empty() ? 1 : p.dilation[i],
                    p.causal.empty() ? false : static_cast<bool>(p.causal[i])});
  return axes;
}

// Stride of each axis in the row-major token order.
std::vector<int64_t> strides_of(const std::vector<Axis>& axes) {
  std::vector<int64_t> strides(axes.size(), 1);
  for (size_t i = axes.size(); i-- > 1;) strides[i - 1] = strides[i] * axes[i].extent;
  return strides;
}

}  // namespace

at::Tensor causal_keep(int64_t n, int64_t m, at::Device device) {
  at::Tensor keep = at::empty({n, m}, at::kBool);
  auto a = keep.accessor<bool, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) a[i][j] = mask::causal_visible(i, j);
  return keep.to(device);
}

at::Tensor causal_keep_rows(const at::Tensor& rows, int64_t m) {
  const at::Tensor r = rows.to(at::kCPU).contiguous();
  at::Tensor keep = at::empty({r.numel(), m}, at::kBool);
  auto a = keep.accessor<bool, 2>();
  const int64_t* query = r.data_ptr<int64_t>();
  for (int64_t i = 0; i < r.numel(); ++i)
    for (int64_t j = 0; j < m; ++j) a[i][j] = mask::causal_visible(query[i], j);
  std::vector<int64_t> sizes = rows.sizes().vec();
  sizes.push_back(m);
  return keep.view(sizes).to(rows.device());
}

at::Tensor token_blocks(int64_t tokens, int64_t block_size, at::Device device) {
  at::Tensor blocks = at::empty({tokens}, at::kLong);
  auto a = blocks.accessor<int64_t, 1>();
  for (int64_t t = 0; t < tokens; ++t) a[t] = mask::block_of(t, block_size);
  return blocks.to(device);
}

at::Tensor unique_lists(const at::Tensor& lists) {
  // Sorting moves the padding to the front; an entry equal to its left neighbour is a repeat.
  const at::Tensor sorted = std::get<0>(lists.sort(-1));
  if (sorted.size(-1) < 2) return sorted;
  const int64_t k = sorted.size(-1);
  const at::Tensor repeat = at::cat(
      {at::zeros_like(sorted.narrow(-1, 0, 1), at::kBool),
       sorted.narrow(-1, 1, k - 1).eq(sorted.narrow(-1, 0, k - 1))},
      -1);
  return sorted.masked_fill(repeat, mask::kNoKey);
}

at::Tensor block_key_lists(const BlockSparse& p, int64_t m) {
  const int64_t k_blocks = (m + p.block_k - 1) / p.block_k;
  auto listed = [](const at::Tensor& count, const at::Tensor& index) {
    const at::Tensor in_count = at::arange(index.size(-1), count.options()) < count.unsqueeze(-1);
    return index.to(at::kLong).masked_fill(in_count.logical_not(), mask::kNoKey);
  };
  at::Tensor blocks = listed(p.kv_count, p.kv_index);
  if (p.full_kv_count.defined()) {
    const at::Tensor full = listed(p.full_kv_count, p.full_kv_index);
    // Partial and full lists may broadcast differently over batch and heads.
    std::vector<int64_t> shape_blocks =
        at::infer_size(blocks.sizes().slice(0, 3), full.sizes().slice(0, 3));
    std::vector<int64_t> shape_full = shape_blocks;
    shape_blocks.push_back(blocks.size(-1));
    shape_full.push_back(full.size(-1));
    blocks = at::cat({blocks.expand(shape_blocks), full.expand(shape_full)}, -1);
  }
  blocks = unique_lists(blocks);  // [B', H', nq, W]

  // Keys of each block, plus a last row of padding that kNoKey blocks index.
  at::Tensor table = at::full({k_blocks + 1, p.block_k}, mask::kNoKey, at::kLong);
  auto a = table.accessor<int64_t, 2>();
  for (int64_t b = 0; b < k_blocks; ++b) {
    const mask::TokenRange r = mask::block_tokens(b, p.block_k, m);
    for (int64_t t = r.begin; t < r.end; ++t) a[b][t - r.begin] = t;
  }
  table = table.to(blocks.device());
  const at::Tensor rows = blocks.masked_fill(blocks.eq(mask::kNoKey), k_blocks);
  const at::Tensor keys = table.index_select(0, rows.flatten());  // [B' H' nq W, block_k]
  std::vector<int64_t> shape = blocks.sizes().vec();
  shape.back() *= p.block_k;
  return keys.view(shape);
}

at::Tensor neighborhood_key_lists(const Neighborhood& p) {
  const std::vector<Axis> axes = axes_of(p);
  const std::vector<int64_t> strides = strides_of(axes);
  int64_t tokens = 1, window = 1;
  for (const Axis& ax : axes) {
    tokens *= ax.extent;
    window *= ax.kernel;
  }
  at::Tensor lists = at::empty({tokens, window}, at::kLong);
  auto a = lists.accessor<int64_t, 2>();
  std::vector<mask::AxisWindow> w(axes.size());
  for (int64_t q = 0; q < tokens; ++q) {
    for (size_t i = 0; i < axes.size(); ++i) {
      const int64_t coord = q / strides[i] % axes[i].extent;
      w[i] = mask::neighborhood_window(coord, axes[i].extent, axes[i].kernel, axes[i].dilation,
                                       axes[i].causal);
    }
    // Slot s enumerates the window's offsets row-major over the axes' kernels.
    for (int64_t s = 0; s < window; ++s) {
      int64_t key = 0, rest = s;
      bool present = true;
      for (size_t i = axes.size(); i-- > 0;) {
        const int64_t offset = rest % axes[i].kernel;
        rest /= axes[i].kernel;
        present = present && offset < w[i].count;
        key += (w[i].first + offset * w[i].step) * strides[i];
      }
      a[q][s] = present ? key : mask::kNoKey;
    }
  }
  return lists;
}

at::Tensor neighborhood_keep_rows(const Neighborhood& p, const at::Tensor& rows) {
  const std::vector<Axis> axes = axes_of(p);
  const std::vector<int64_t> strides = strides_of(axes);
  const int64_t tokens = strides.front() * axes.front().extent;
  const at::Tensor r = rows.to(at::kCPU).contiguous();
  at::Tensor keep = at::empty({r.numel(), tokens}, at::kBool);
  auto a = keep.accessor<bool, 2>();
  const int64_t* query = r.data_ptr<int64_t>();
  for (int64_t i = 0; i < r.numel(); ++i) {
    for (int64_t key = 0; key < tokens; ++key) {
      bool visible = true;
      for (size_t x = 0; x < axes.size() && visible; ++x) {
        visible = mask::neighborhood_visible(query[i] / strides[x] % axes[x].extent, key / strides[x] % axes[x].extent,
                                             axes[x].extent, axes[x].kernel, axes[x].dilation, axes[x].causal);
      }
      a[i][key] = visible;
    }
  }
  std::vector<int64_t> sizes = rows.sizes().vec();
  sizes.push_back(tokens);
  return keep.view(sizes).to(rows.device());
}

}  // namespace sparsescope::detail
