// Views of a trace against hand-computed values: per-head query maps, attention rollout (Abnar &
// Zuidema 2020), bilinear upsampling.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_maps.h"

namespace sv = sparsescope::vision;

namespace {

sv::TokenLayout layout(int64_t prefix, int64_t gh, int64_t gw) {
  sv::TokenLayout l;
  l.prefix = prefix;
  l.grid = {1, gh, gw};
  return l;
}

sv::SiteTrace full_site(const std::string& name, const at::Tensor& probs) {  // probs [H, N, N]
  sv::SiteTrace s;
  s.name = name;
  s.queries = probs.size(1);
  s.keys = probs.size(2);
  s.probs = probs;
  s.mask = at::ones({1, s.queries, s.keys});
  s.stats = at::zeros({probs.size(0), sv::kStatColumns});
  s.row_queries = at::empty({0}, at::kLong);
  s.rows = at::empty({probs.size(0), 0, s.keys});
  return s;
}

TEST(QueryMaps, FullMapsGiveTheQueryRowOverTheGrid) {
  at::manual_seed(0);
  const auto probs = at::rand({2, 7, 7});
  const auto maps = sv::query_maps(full_site("s", probs), layout(1, 2, 3), 4);
  EXPECT_EQ(maps.sizes(), at::IntArrayRef({2, 1, 2, 3}));
  EXPECT_TRUE(at::equal(maps, probs.select(1, 4).narrow(1, 1, 6).reshape({2, 1, 2, 3})));
}

TEST(QueryMaps, PooledSitesUseRecordedRowsElseTheCellMean) {
  at::manual_seed(1);
  // 7 tokens pooled by 2: cells of queries {0,1}, {2,3}, {4,5}, {6}; row of query 3 recorded.
  sv::SiteTrace s = full_site("s", at::rand({2, 4, 4}));
  s.queries = s.keys = 7;
  s.pool = 2;
  s.row_queries = at::tensor({3}, at::kLong);
  s.rows = at::rand({2, 1, 7});
  const auto l = layout(1, 2, 3);
  EXPECT_TRUE(at::equal(sv::query_maps(s, l, 3), s.rows.select(1, 0).narrow(1, 1, 6).reshape({2, 1, 2, 3})));
  // Query 5 lies in pooled row 2; key j in pooled column j / 2, so grid keys 1..6 read columns 0,1,1,2,2,3.
  const auto maps = sv::query_maps(s, l, 5);
  const int64_t columns[] = {0, 1, 1, 2, 2, 3};
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t j = 0; j < 6; ++j)
      EXPECT_EQ(maps[h][0][j / 3][j % 3].item<float>(), s.probs[h][2][columns[j]].item<float>()) << h << " " << j;
}

TEST(QueryMaps, RefusesWhatDoesNotFit) {
  const auto s = full_site("s", at::rand({1, 7, 7}));
  EXPECT_THROW(sv::query_maps(s, layout(1, 2, 3), 7), sparsescope::Error);
  EXPECT_THROW(sv::query_maps(s, layout(1, 3, 3), 0), sparsescope::Error);
  sv::TokenLayout no_grid;
  no_grid.prefix = 7;
  EXPECT_THROW(sv::query_maps(s, no_grid, 0), sparsescope::Error);
}

sv::Trace two_layer_trace(const at::Tensor& p1, const at::Tensor& p2) {
  sv::Trace t;
  t.info.layout = layout(1, 1, 2);
  t.sites = {full_site("blocks.0.attn", p1), full_site("blocks.1.attn", p2)};
  return t;
}

TEST(Rollout, MatchesAHandComputedTwoLayerCase) {
  // A1 = 0.5 P1 + 0.5 I = [[.5 .5 0] [.5 .5 0] [0 0 1]], A2 = [[.5 0 .5] [0 1 0] [.5 0 .5]].
  // Rollout A2 A1: row 0 = .5 A1[0] + .5 A1[2] = [.25 .25 .5]; row 1 = A1[1] = [.5 .5 0].
  // (The other order, A1 A2, would give row 0 = [.25 .5 .25].)
  const auto p1 = at::tensor({0.f, 1.f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.f, 1.f}).view({1, 3, 3});
  const auto p2 = at::tensor({0.f, 0.f, 1.f, 0.f, 1.f, 0.f, 1.f, 0.f, 0.f}).view({1, 3, 3});
  const auto trace = two_layer_trace(p1, p2);
  const auto r0 = sv::rollout(trace, 0);
  EXPECT_EQ(r0.sizes(), at::IntArrayRef({1, 1, 2}));
  EXPECT_TRUE(at::allclose(r0, at::tensor({0.25f, 0.5f}).view({1, 1, 2})));
  EXPECT_TRUE(at::allclose(sv::rollout(trace, 1), at::tensor({0.5f, 0.0f}).view({1, 1, 2})));
}

TEST(Rollout, AveragesHeads) {
  // Layer 2's second head differs in row 2 ([.5 0 .5]), so its heads average to [.75 0 .25] there:
  // A2[2] = [.375 0 .625] and rollout row 2 = .375 A1[0] + .625 A1[2] = [.1875 .1875 .625].
  const auto p1 = at::tensor({0.f, 1.f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.f, 1.f}).view({1, 3, 3});
  const auto p2 = at::tensor({0.f, 0.f, 1.f, 0.f, 1.f, 0.f, 1.f, 0.f, 0.f,  //
                              0.f, 0.f, 1.f, 0.f, 1.f, 0.f, .5f, 0.f, .5f})
                      .view({2, 3, 3});
  EXPECT_TRUE(at::allclose(sv::rollout(two_layer_trace(p1, p2), 2), at::tensor({0.1875f, 0.625f}).view({1, 1, 2})));
}

TEST(Rollout, RenormalisesRowsWithoutKeys) {
  // Layer 2's query 0 saw no key (a sparse pattern): its row of 0.5 I is renormalised to e_0, so
  // rollout row 0 is A1[0] = [.5 .5 0].
  const auto p1 = at::tensor({0.f, 1.f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.f, 1.f}).view({1, 3, 3});
  const auto p2 = at::tensor({0.f, 0.f, 0.f, 0.f, 1.f, 0.f, 1.f, 0.f, 0.f}).view({1, 3, 3});
  EXPECT_TRUE(at::allclose(sv::rollout(two_layer_trace(p1, p2), 0), at::tensor({0.5f, 0.0f}).view({1, 1, 2})));
}

TEST(Rollout, NeedsFullMaps) {
  auto trace = two_layer_trace(at::eye(3).unsqueeze(0), at::eye(3).unsqueeze(0));
  trace.sites[1].pool = 2;
  try {
    sv::rollout(trace, 0);
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.1.attn"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sv::rollout(sv::Trace{}, 0), sparsescope::Error);
}

TEST(Upsample, BilinearWithHalfPixelCentres) {
  // 2 -> 4 with align_corners false samples source coordinates -0.25, 0.25, 0.75, 1.25 (clamped):
  // weights 0, .25, .75, 1 between the two source pixels, per axis.
  const auto maps = at::tensor({0.f, 1.f, 2.f, 3.f}).view({1, 1, 2, 2}).expand({2, 1, 2, 2});
  const auto up = sv::upsample_maps(maps, 4, 4);
  EXPECT_EQ(up.sizes(), at::IntArrayRef({2, 1, 4, 4}));
  const auto want = at::tensor({0.f, .25f, .75f, 1.f,      //
                                .5f, .75f, 1.25f, 1.5f,    //
                                1.5f, 1.75f, 2.25f, 2.5f,  //
                                2.f, 2.25f, 2.75f, 3.f})
                        .view({4, 4});
  EXPECT_TRUE(at::allclose(up[1][0], want));
  EXPECT_THROW(sv::upsample_maps(at::zeros({3}), 4, 4), sparsescope::Error);
}

}  // namespace

// Mean attention distance on a 2 x 2 grid: all on the query itself is 0, all on the opposite
// corner sqrt(2), the class token's share counts 0; over visible patches, their own positions.
TEST(MeanAttentionDistance, WeighsDistancesInPatches) {
  at::Tensor probs = at::zeros({3, 5, 5});
  for (int64_t q = 1; q < 5; ++q) {
    probs[0][q][q] = 1;          // head 0: itself
    probs[1][q][5 - q] = 1;      // head 1: the opposite corner (1<->4, 2<->3)
    probs[2][q][0] = 0.5;        // head 2: half on the class token, half on the patch to the right/left
    probs[2][q][q % 2 == 1 ? q + 1 : q - 1] = 0.5;
  }
  const at::Tensor d = sv::mean_attention_distance(full_site("s", probs), layout(1, 2, 2));
  EXPECT_NEAR(d[0].item<float>(), 0.0, 1e-6);
  EXPECT_NEAR(d[1].item<float>(), std::sqrt(2.0), 1e-6);
  EXPECT_NEAR(d[2].item<float>(), 0.5, 1e-6);

  // Visible patches 0 and 3 (opposite corners), each all on the other.
  sv::TokenLayout l = layout(1, 2, 2);
  l.visible = {3, 0};
  at::Tensor v = at::zeros({1, 3, 3});
  v[0][1][2] = v[0][2][1] = 1;
  sv::SiteTrace s = full_site("enc", v);
  s.subset = sv::kVisibleTokens;
  EXPECT_NEAR(sv::mean_attention_distance(s, l)[0].item<float>(), std::sqrt(2.0), 1e-6);
  s.pool = 2;
  EXPECT_THROW(sv::mean_attention_distance(s, l), sparsescope::Error);
}
