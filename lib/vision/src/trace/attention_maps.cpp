#include "sparsescope/vision/attention_maps.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

int64_t grid_tokens(const TokenLayout& layout, const char* what) {
  SPARSESCOPE_CHECK(layout.grid.size() == 3, what, ": the trace's token layout has no [T, H, W] patch grid");
  return layout.grid[0] * layout.grid[1] * layout.grid[2];
}

void check_query(const SiteTrace& site, int64_t query, const char* what) {
  SPARSESCOPE_CHECK(query >= 0 && query < site.queries, what, ": query ", query, " is outside [0, ", site.queries,
                    ") at site '", site.name, "'");
}

// Where `query` is among the site's full rows, or -1.
int64_t recorded_row(const SiteTrace& site, int64_t query) {
  if (!site.row_queries.defined()) return -1;
  const at::Tensor queries = site.row_queries.to(at::kCPU, at::kLong).contiguous();
  const int64_t* q = queries.const_data_ptr<int64_t>();
  for (int64_t i = 0; i < queries.numel(); ++i) {
    if (q[i] == query) return i;
  }
  return -1;
}

// Row `query` of the site's probabilities: [H, M].
at::Tensor site_row(const SiteTrace& site, int64_t query) {
  check_query(site, query, "query_maps");
  at::Tensor row;  // [H, M]
  const int64_t recorded = recorded_row(site, query);
  if (site.pool == 1) {
    row = site.probs.select(1, query);
  } else if (recorded >= 0) {
    row = site.rows.select(1, recorded);
  } else {
    // Each key gets the mean probability of the pooled cell it falls in.
    const at::Tensor cells = at::arange(site.keys, at::kLong).div(site.pool, "floor");
    row = site.probs.select(1, query / site.pool).index_select(1, cells);
  }
  return row;
}

}  // namespace

std::vector<const SiteTrace*> attention_sites(const Trace& trace) {
  std::vector<const SiteTrace*> sites;
  for (const auto& site : trace.sites) {
    if (site.kind == kAttentionMap) sites.push_back(&site);
  }
  return sites;
}

int64_t site_token(const SiteTrace& site, const TokenLayout& layout, int64_t token) {
  if (site.subset != kVisibleTokens || token < layout.prefix) return token;
  const auto at = std::find(layout.visible.begin(), layout.visible.end(), token - layout.prefix);
  return at == layout.visible.end() ? -1 : layout.prefix + (at - layout.visible.begin());
}

int64_t layout_token(const SiteTrace& site, const TokenLayout& layout, int64_t index) {
  if (site.subset != kVisibleTokens || index < layout.prefix) return index;
  const auto at = static_cast<size_t>(index - layout.prefix);
  SPARSESCOPE_CHECK(at < layout.visible.size(), "site '", site.name, "' has no token ", index, " (",
                    layout.visible.size(), " visible patches)");
  return layout.prefix + layout.visible[at];
}

at::Tensor query_maps(const SiteTrace& site, const TokenLayout& layout, int64_t query) {
  const int64_t grid = grid_tokens(layout, "query_maps");
  SPARSESCOPE_CHECK(site.kind == kAttentionMap, "query_maps: site '", site.name, "' holds a ", site.kind,
                    " map, not attention over the tokens");
  const bool visible = site.subset == kVisibleTokens;
  const int64_t keys = visible ? layout.prefix + static_cast<int64_t>(layout.visible.size()) : layout.tokens();
  SPARSESCOPE_CHECK(site.keys == keys, "query_maps: site '", site.name, "' has ", site.keys, " keys but the token layout has ",
                    keys, visible ? " visible tokens" : " tokens");
  SPARSESCOPE_CHECK(query >= 0 && query < layout.tokens(), "query_maps: query ", query, " is outside [0, ",
                    layout.tokens(), ")");
  const auto& g = layout.grid;
  const int64_t own = site_token(site, layout, query);
  if (own < 0) return at::zeros({site.heads(), g[0], g[1], g[2]});
  at::Tensor row = site_row(site, own);  // [H, M]
  if (visible) {  // the visible patches' columns at their places in the grid
    at::Tensor full = at::zeros({row.size(0), layout.tokens()}, row.options());
    std::vector<int64_t> columns(static_cast<size_t>(layout.prefix));
    for (int64_t p = 0; p < layout.prefix; ++p) columns[static_cast<size_t>(p)] = p;
    for (const int64_t patch : layout.visible) columns.push_back(layout.prefix + patch);
    full.index_copy_(1, at::tensor(columns, at::kLong), row);
    row = full;
  }
  return row.narrow(1, layout.prefix, grid).to(at::kFloat).reshape({row.size(0), g[0], g[1], g[2]});
}

at::Tensor rollout(const Trace& trace, int64_t query) {
  const auto& layout = trace.info.layout;
  const int64_t grid = grid_tokens(layout, "rollout");
  const int64_t n = layout.tokens();
  const std::vector<const SiteTrace*> sites = attention_sites(trace);
  SPARSESCOPE_CHECK(!sites.empty(), "rollout: the trace has no attention sites");
  for (const SiteTrace* s : sites) {
    const SiteTrace& site = *s;
    SPARSESCOPE_CHECK(site.pool == 1, "rollout: site '", site.name, "' holds maps pooled ", site.pool, "x", site.pool,
                      "; rollout needs full maps (record with a larger budget)");
    SPARSESCOPE_CHECK(site.queries == n && site.keys == n, "rollout: site '", site.name, "' is ", site.queries, " x ",
                      site.keys, ", but the token layout has ", n, " tokens (self-attention over all of them)");
  }
  check_query(*sites.front(), query, "rollout");
  // Row `query` of A_L ... A_1 as a row vector times the layers from the last one down: O(L n^2).
  const at::Tensor identity = at::eye(n, at::kDouble);
  at::Tensor v = at::zeros({1, n}, at::kDouble);
  v[0][query] = 1.0;
  for (auto it = sites.rbegin(); it != sites.rend(); ++it) {
    at::Tensor a = 0.5 * (*it)->probs.to(at::kDouble).mean(0) + 0.5 * identity;
    // Rows re-normalised as in the paper: stored float16 maps, and sparse rows without keys, do not
    // sum to exactly one.
    a = a / a.sum(1, /*keepdim=*/true);
    v = at::matmul(v, a);
  }
  const auto& g = layout.grid;
  return v.squeeze(0).narrow(0, layout.prefix, grid).to(at::kFloat).reshape({g[0], g[1], g[2]});
}

bool has_attention_distance(const SiteTrace& site, const TokenLayout& layout) {
  return layout.kind == kGridLayout && layout.grid.size() == 3 && site.kind == kAttentionMap && site.pool == 1 &&
         site.queries == site.keys && site.queries > layout.prefix;
}

at::Tensor mean_attention_distance(const SiteTrace& site, const TokenLayout& layout) {
  grid_tokens(layout, "mean_attention_distance");
  SPARSESCOPE_CHECK(site.kind == kAttentionMap && site.pool == 1, "mean_attention_distance: site '", site.name,
                    "' needs full attention maps (pool 1)");
  const auto& g = layout.grid;
  const int64_t n = site.keys;
  SPARSESCOPE_CHECK(site.queries == n && n >= layout.prefix + 1, "mean_attention_distance: site '", site.name,
                    "' is not self-attention over patches");
  // Grid position of each of the site's patch tokens.
  std::vector<double> where(static_cast<size_t>(3 * (n - layout.prefix)));
  for (int64_t i = layout.prefix; i < n; ++i) {
    const int64_t patch = layout_token(site, layout, i) - layout.prefix;
    SPARSESCOPE_CHECK(patch >= 0 && patch < g[0] * g[1] * g[2], "mean_attention_distance: site '", site.name,
                      "' has more tokens than the layout's grid");
    const auto at = static_cast<size_t>(3 * (i - layout.prefix));
    where[at] = static_cast<double>(patch / (g[1] * g[2]));
    where[at + 1] = static_cast<double>((patch / g[2]) % g[1]);
    where[at + 2] = static_cast<double>(patch % g[2]);
  }
  const at::Tensor pos = at::tensor(where, at::kDouble).view({n - layout.prefix, 3});
  const at::Tensor distance = at::cdist(pos, pos);  // [P, P]
  const at::Tensor p = site.probs.to(at::kDouble).narrow(1, layout.prefix, n - layout.prefix).narrow(2, layout.prefix,
                                                                                                     n - layout.prefix);
  return (p * distance).sum(-1).mean(-1).to(at::kFloat);
}

at::Tensor upsample_maps(const at::Tensor& maps, int64_t height, int64_t width) {
  SPARSESCOPE_CHECK(maps.defined() && maps.dim() >= 2 && maps.size(-1) >= 1 && maps.size(-2) >= 1,
                    "upsample_maps: expected `maps` [..., h, w], got ",
                    maps.defined() ? maps.sizes() : at::IntArrayRef{});
  SPARSESCOPE_CHECK(height >= 1 && width >= 1, "upsample_maps: target size ", height, " x ", width,
                    " must be positive");
  const int64_t h = maps.size(-2), w = maps.size(-1);
  auto sizes = maps.sizes().vec();
  const at::Tensor planes = maps.to(at::kFloat).reshape({-1, 1, h, w});
  const at::Tensor up = at::upsample_bilinear2d(planes, {height, width}, /*align_corners=*/false);
  sizes[sizes.size() - 2] = height;
  sizes[sizes.size() - 1] = width;
  return up.view(sizes);
}

}  // namespace sparsescope::vision
