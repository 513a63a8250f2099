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

/// Attention of `query` to the grid tokens, per head: float32 [H, T, gh, gw]. Exact when the site
/// holds full maps or a recorded row for `query`; from the pooled cell otherwise.
at::Tensor query_maps(const SiteTrace& site, const TokenLayout& layout, int64_t query);

/// Rollout of the attention sites in order for `query`: prod_l (0.5 * mean_h A_l + 0.5 * I), row `query`,
/// restricted to the grid: float32 [T, gh, gw]. Needs full maps (pool 1) at every site.
at::Tensor rollout(const Trace& trace, int64_t query = 0);

/// Bilinear resize of maps [..., h, w] to [..., height, width] (align_corners false).
at::Tensor upsample_maps(const at::Tensor& maps, int64_t height, int64_t width);

}  // namespace sparsescope::vision
