#pragma once
// A small synthetic trace with known answers for the viewer's tests: 3 layers of 4 heads over a 5 x 5
// patch grid plus a class token. Every query of every head puts half its attention on one "peak"
// patch (peak_patch) and spreads the other half evenly; the mask keeps the class token, the query
// itself and the peak; the stats are simple functions of layer and head (recall NaN for head 3).
#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <utility>

#include "sparsescope/vision/trace.h"

namespace sparsescope::test {

constexpr int64_t kFixtureLayers = 3;
constexpr int64_t kFixtureHeads = 4;
constexpr int64_t kFixtureGrid = 5;
constexpr int64_t kFixtureTokens = 1 + kFixtureGrid * kFixtureGrid;
constexpr int64_t kFixturePixelsPerPatch = 16;

/// (row, col) of the patch that query `query` of (layer, head) looks at most.
inline std::pair<int64_t, int64_t> peak_patch(int64_t layer, int64_t head, int64_t query) {
  return {(query + layer + 2 * head) % kFixtureGrid, (3 * query + head + layer) % kFixtureGrid};
}

inline float fixture_stat(int64_t layer, int64_t head, int64_t column) {
  if (column == vision::kRecall) return head == 3 ? std::numeric_limits<float>::quiet_NaN() : 0.9f - 0.1f * head;
  if (column == vision::kDensity) return 0.1f * (layer + 1);
  return 1.0f + 0.25f * layer + 0.05f * head;  // entropy
}

inline vision::Trace fixture_trace(const std::string& input = "fixture.png") {
  vision::Trace t;
  t.info.model = "fixture";
  t.info.method = "dense";
  t.info.input = input;
  t.info.producer = "viewer tests";
  t.info.layout.prefix = 1;
  t.info.layout.grid = {1, kFixtureGrid, kFixtureGrid};
  t.info.layout.segments = {{"prefix", 0, 1}, {"image", 1, kFixtureTokens}};
  const int64_t side = kFixtureGrid * kFixturePixelsPerPatch;
  // A mid-grey checkerboard of patches: something to see under the maps.
  t.image = at::full({side, side, 3}, 96, at::kByte);
  for (int64_t r = 0; r < kFixtureGrid; ++r)
    for (int64_t c = (r % 2); c < kFixtureGrid; c += 2)
      t.image.slice(0, r * kFixturePixelsPerPatch, (r + 1) * kFixturePixelsPerPatch)
          .slice(1, c * kFixturePixelsPerPatch, (c + 1) * kFixturePixelsPerPatch)
          .fill_(160);
  for (int64_t l = 0; l < kFixtureLayers; ++l) {
    vision::SiteTrace s;
    s.name = "blocks." + std::to_string(l) + ".attn";
    s.pattern = "dense";
    s.queries = s.keys = kFixtureTokens;
    s.pool = 1;
    s.probs = at::full({kFixtureHeads, kFixtureTokens, kFixtureTokens}, 0.5f / kFixtureTokens);
    s.mask = at::zeros({kFixtureHeads, kFixtureTokens, kFixtureTokens});
    s.stats = at::empty({kFixtureHeads, vision::kStatColumns});
    for (int64_t h = 0; h < kFixtureHeads; ++h) {
      for (int64_t q = 0; q < kFixtureTokens; ++q) {
        const auto [row, col] = peak_patch(l, h, q);
        const int64_t peak = 1 + row * kFixtureGrid + col;
        s.probs[h][q][peak] += 0.5f;
        s.mask[h][q][0] = 1;
        s.mask[h][q][q] = 1;
        s.mask[h][q][peak] = 1;
      }
      for (int64_t c = 0; c < vision::kStatColumns; ++c) s.stats[h][c] = fixture_stat(l, h, c);
    }
    s.rows = at::zeros({kFixtureHeads, 0, kFixtureTokens});
    s.row_queries = at::zeros({0}, at::kLong);
    t.sites.push_back(std::move(s));
  }
  return t;
}

}  // namespace sparsescope::test
