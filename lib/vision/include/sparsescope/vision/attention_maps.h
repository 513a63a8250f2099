#pragma once
// The views people expect from a trace: per-head maps of one query over the patch grid (DINO's
// CLS maps for query 0) and attention rollout (Abnar & Zuidema 2020, with the residual identity),
// plus bilinear upsampling of a grid map to the image.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "sparsescope/vision/trace.h"

namespace sparsescope::vision {

/// The sites whose maps are attention over the tokens (kind kAttentionMap), in order: what query
/// maps, rollout, overlays and the viewer draw (channel and kernel maps are over other axes).
std::vector<const SiteTrace*> attention_sites(const Trace& trace);

/// The site's row or column of the layout's token `token`: the token itself for sites over all the
/// layout's tokens; for sites over the visible ones (SiteTrace::subset), the prefix as is and a
/// visible patch at its place in layout.visible, -1 for a patch the site does not see.
int64_t site_token(const SiteTrace& site, const TokenLayout& layout, int64_t token);
/// The inverse: the layout's token at the site's row or column `index`.
int64_t layout_token(const SiteTrace& site, const TokenLayout& layout, int64_t index);

/// Attention of the layout's token `query` to the grid tokens, per head: float32 [H, T, gh, gw].
/// Exact when the site holds full maps or a recorded row for `query`; from the pooled cell
/// otherwise. At a site over the visible tokens, patches it does not see get 0 (and a query it does
/// not see attends nowhere: all 0).
at::Tensor query_maps(const SiteTrace& site, const TokenLayout& layout, int64_t query);

/// Rollout of the attention sites in order for `query`: prod_l (0.5 * mean_h A_l + 0.5 * I), row `query`,
/// restricted to the grid: float32 [T, gh, gw]. Needs full maps (pool 1) at every site.
at::Tensor rollout(const Trace& trace, int64_t query = 0);

/// Mean attention distance per head (Dosovitskiy et al. 2021, appendix D.7): over the site's patch
/// queries, the attention-weighted mean distance to the patch keys, in patches of the grid (frames,
/// rows, columns; Euclidean), the weights as recorded (the prefix tokens' share counts as distance 0
/// and is not renormalised away). float32 [H]. Needs full maps (pool 1) and a grid layout; at a site
/// over the visible patches, their own positions.
at::Tensor mean_attention_distance(const SiteTrace& site, const TokenLayout& layout);
/// Whether mean_attention_distance applies: full self-attention maps over a grid layout's patches.
bool has_attention_distance(const SiteTrace& site, const TokenLayout& layout);

/// Bilinear resize of maps [..., h, w] to [..., height, width] (align_corners false).
at::Tensor upsample_maps(const at::Tensor& maps, int64_t height, int64_t width);

}  // namespace sparsescope::vision
