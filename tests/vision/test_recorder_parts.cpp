// Sites recorded in parts (probe_set.h: row ranges, gated branches, passes merged by log-sum-exp)
// and maps handed over without attend(), against references computed here in float64 and against
// attend()'s own outputs and log-sum-exps.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <tuple>
#include <limits>

#include "probs_reference.h"
#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/recorder.h"

namespace sv = sparsescope::vision;
using sparsescope::testing::max_diff;
using sparsescope::testing::reference_probs;
using sparsescope::Dense;
using sparsescope::Neighborhood;
using sparsescope::TopK;

namespace {

at::Tensor range(int64_t begin, int64_t end) { return at::arange(begin, end, at::kLong); }

sv::SitePart part_named(const std::string& name, sv::SitePart::Merge merge = sv::SitePart::Merge::Sum) {
  sv::SitePart part;
  part.name = name;
  part.merge = merge;
  return part;
}

// A TopK site of 13 queries run whole, and in two row ranges whose patterns are the whole's rows.
struct RowRanges {
  at::Tensor q = at::randn({2, 2, 13, 8}), k = at::randn({2, 2, 11, 8});
  TopK topk{at::randint(-1, 11, {2, 2, 13, 4}, at::kLong), {}};

  std::vector<sv::Trace> whole(const sv::RecorderOptions& options) const {
    sv::Recorder recorder(options);
    sparsescope::attend(q, k, k, topk, recorder.site("s"));
    return recorder.take();
  }
  std::vector<sv::Trace> parts(const sv::RecorderOptions& options) const {
    sv::Recorder recorder(options);
    for (auto [name, r0, r1] : {std::tuple{"rows0", 0, 6}, {"rows1", 6, 13}}) {
      sv::SitePart part = part_named(name);
      part.queries = range(r0, r1);
      part.site_queries = 13;
      sparsescope::attend(q.narrow(2, r0, r1 - r0), k, k, TopK{topk.index.narrow(2, r0, r1 - r0), {}},
                          recorder.part("s", part));
    }
    return recorder.take();
  }
};

}  // namespace

TEST(RecorderParts, RowRangesMakeUpTheWholeSite) {
  at::manual_seed(0);
  const RowRanges site;
  for (const int64_t budget : {int64_t{1} << 20, int64_t{20}}) {  // full maps, and pool 3 in steps of 3 rows
    sv::RecorderOptions options;
    options.budget = budget;
    options.chunk_cells = budget == 20 ? 40 : options.chunk_cells;
    options.queries = {0, 7};
    const auto whole = site.whole(options), parts = site.parts(options);
    ASSERT_EQ(parts.size(), 2u);
    for (size_t b = 0; b < 2; ++b) {
      const sv::SiteTrace &w = whole[b].sites.at(0), &p = parts[b].sites.at(0);
      EXPECT_EQ(p.pattern, "topk");
      EXPECT_EQ(p.pool, w.pool);
      EXPECT_LE(max_diff(p.probs, w.probs), 1e-6) << budget;
      EXPECT_LE(max_diff(p.mask, w.mask), 1e-6) << budget;
      EXPECT_TRUE(at::equal(p.row_queries, w.row_queries));
      if (w.row_queries.numel() > 0) {
        EXPECT_LE(max_diff(p.rows, w.rows), 1e-6) << budget;
      }
      EXPECT_LE(max_diff(p.stats.narrow(1, sv::kDensity, 2), w.stats.narrow(1, sv::kDensity, 2)), 1e-5);
      EXPECT_TRUE(std::isnan(p.stats[0][sv::kRecall].item<float>())) << "no part covers the whole site";
      ASSERT_EQ(p.parts.size(), 2u);
      EXPECT_EQ(p.parts[0].name, "rows0");
      EXPECT_EQ(p.parts[0].merge, "sum");
      // Each part holds its rows of the site's maps, gate 1 on them; together they are the site.
      EXPECT_LE(max_diff(p.parts[0].probs + p.parts[1].probs, w.probs), 1e-6);
      EXPECT_LE(max_diff(p.parts[0].gate + p.parts[1].gate, at::ones({1, w.probs.size(1)})), 1e-6);
      if (budget > 20) {
        EXPECT_EQ(p.parts[0].probs.narrow(1, 6, 7).abs().sum().item<double>(), 0.0);
        EXPECT_LE(max_diff(p.parts[0].probs.narrow(1, 0, 6), w.probs.narrow(1, 0, 6)), 1e-6);
        EXPECT_TRUE(p.parts[0].gate.narrow(1, 0, 6).eq(1).all().item<bool>());
      }
    }
  }
}

// Two passes over disjoint keys whose outputs merge by their log-sum-exp (MMInference's prefill)
// are one softmax over all keys; each pass's gate is the weight the merge gives it.
TEST(RecorderParts, PassesMergedByLogSumExpAreOneSoftmaxOverTheUnion) {
  at::manual_seed(1);
  const auto q = at::randn({1, 2, 9, 8}), k = at::randn({1, 2, 11, 8}), v = at::randn({1, 2, 11, 4});
  sv::Recorder recorder;
  std::vector<sparsescope::AttendResult> passes;
  for (auto [name, m0, m1] : {std::tuple{"local", 0, 5}, {"global", 5, 11}}) {
    sv::SitePart part = part_named(name, sv::SitePart::Merge::Lse);
    part.keys = range(m0, m1);
    part.site_keys = 11;
    passes.push_back(sparsescope::attend_lse(q, k.narrow(2, m0, m1 - m0), v.narrow(2, m0, m1 - m0), Dense{},
                                             recorder.part("s", part)));
  }
  const sv::SiteTrace s = recorder.take().at(0).sites.at(0);
  const double scale = 1 / std::sqrt(8.0);
  const at::Tensor all = reference_probs(q[0], k[0], at::ones({2, 9, 11}, at::kBool), scale);
  EXPECT_LE(max_diff(s.probs, all), 1e-6);
  EXPECT_TRUE(s.mask.eq(1).all().item<bool>());
  // The merge of the two outputs by their LSEs is the effective probabilities times v.
  const at::Tensor lse = at::logaddexp(passes[0].lse, passes[1].lse);
  const at::Tensor w0 = (passes[0].lse - lse).exp(), w1 = (passes[1].lse - lse).exp();
  const at::Tensor merged = passes[0].out * w0.unsqueeze(-1) + passes[1].out * w1.unsqueeze(-1);
  EXPECT_LE(max_diff(at::matmul(s.probs, v[0]), merged[0]), 1e-5);
  ASSERT_EQ(s.parts.size(), 2u);
  EXPECT_EQ(s.parts[1].merge, "lse");
  EXPECT_LE(max_diff(s.parts[0].gate, w0[0]), 1e-5);
  EXPECT_LE(max_diff(s.parts[1].gate, w1[0]), 1e-5);
  EXPECT_LE(max_diff(s.parts[1].probs.narrow(2, 5, 6),
                     reference_probs(q[0], k[0].narrow(1, 5, 6), at::ones({2, 9, 6}, at::kBool), scale)),
            1e-6);
}

// Gated branches over the same queries and keys (Direct3D-S2's window and selected-block branches):
// the site's attention is the gate-weighted sum, its mask the union, and recall is measured against
// dense attention from the branches' q and k.
TEST(RecorderParts, GatedBranchesSumTheirWeightedProbabilities) {
  at::manual_seed(2);
  const int64_t n = 12;
  const auto q = at::randn({2, 3, n, 8}), k = at::randn({2, 1, n, 8}), v = at::randn({2, 1, n, 4});  // GQA: one K/V head
  const auto gate_window = at::rand({2, 3, n}), gate_selected = at::rand({2, 1, n});
  const Neighborhood window{{3, 4}, {3, 3}, {}, {}, {}};
  const TopK selected{at::randint(-1, n, {2, 3, n, 3}, at::kLong), {}};
  sv::Recorder recorder;
  sv::SitePart a = part_named("window"), b = part_named("selected");
  a.gate = gate_window;
  b.gate = gate_selected;
  const at::Tensor out_window = sparsescope::attend(q, k, v, window, recorder.part("s", a));
  const at::Tensor out_selected = sparsescope::attend(q, k, v, selected, recorder.part("s", b));
  const at::Tensor out = out_window * gate_window.unsqueeze(-1) + out_selected * gate_selected.unsqueeze(-1);
  const auto traces = recorder.take();
  ASSERT_EQ(traces.size(), 2u);
  const double scale = 1 / std::sqrt(8.0);
  const at::Tensor kh = k.expand({2, 3, n, 8});
  for (int64_t i = 0; i < 2; ++i) {
    const sv::SiteTrace& s = traces[i].sites.at(0);
    EXPECT_EQ(s.pattern, "neighborhood+topk");
    const at::Tensor keep_w = sparsescope::materialize(window, n, n)[0][0].expand({3, n, n});
    const at::Tensor keep_s = sparsescope::materialize(selected, n, n)[i];
    const at::Tensor want = reference_probs(q[i], kh[i], keep_w, scale) * gate_window[i].unsqueeze(-1).to(at::kDouble) +
                            reference_probs(q[i], kh[i], keep_s, scale) * gate_selected[i].unsqueeze(-1).to(at::kDouble);
    EXPECT_LE(max_diff(s.probs, want), 1e-6);
    EXPECT_LE(max_diff(at::matmul(s.probs, v[i].expand({3, n, 4})), out[i]), 1e-5);
    const at::Tensor keep = keep_w.logical_or(keep_s);
    EXPECT_TRUE(at::equal(s.mask.to(at::kBool), keep));
    const at::Tensor dense = reference_probs(q[i], kh[i], at::ones_like(keep), scale);
    EXPECT_LE(max_diff(s.stats.select(1, sv::kRecall), (dense * keep).sum(-1).mean(-1)), 1e-5);
    EXPECT_LE(max_diff(s.parts[0].gate, gate_window[i]), 1e-6);
    EXPECT_EQ(s.parts[0].mask.size(0), 1) << "the window is shared by the heads";
    EXPECT_LE(max_diff(s.parts[1].gate, gate_selected[i]), 1e-6);
    EXPECT_EQ(s.parts[1].gate.size(0), 1);
  }
}

TEST(RecorderParts, MapsHandedOverKeepTheirValues) {
  at::manual_seed(3);
  sv::Recorder recorder;
  const at::Tensor values = at::relu(at::randn({2, 3, 6, 6}));  // ReLU channel attention: real zeros
  recorder.map("gsa", sv::MapKind::Channel, values);
  const auto traces = recorder.take();
  ASSERT_EQ(traces.size(), 2u);
  const sv::SiteTrace& s = traces[1].sites.at(0);
  EXPECT_EQ(s.kind, sv::kChannelMap);
  EXPECT_TRUE(s.pattern.empty());
  EXPECT_LE(max_diff(s.probs, values[1]), 0.0);
  EXPECT_TRUE(at::equal(s.mask.to(at::kBool), values[1].ne(0)));
  EXPECT_LE(max_diff(s.stats.select(1, sv::kDensity), values[1].ne(0).to(at::kDouble).mean({1, 2})), 1e-6);
  EXPECT_TRUE(std::isnan(s.stats[0][sv::kEntropy].item<float>()));
}

TEST(RecorderParts, RejectsMisuse) {
  const auto x = at::randn({1, 1, 4, 4});
  auto message = [&](const std::function<void(sv::Recorder&)>& run) -> std::string {
    sv::Recorder recorder;
    try {
      run(recorder);
    } catch (const sparsescope::Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message([&](sv::Recorder& r) {
              sparsescope::attend(x, x, x, Dense{}, r.part("s", part_named("a")));
              sparsescope::attend(x, x, x, Dense{}, r.part("s", part_named("a")));
            }),
            "Recorder: site 's', part 'a' was observed twice; call take() after each forward pass");
  EXPECT_EQ(message([&](sv::Recorder& r) {
              sparsescope::attend(x, x, x, Dense{}, r.site("s"));
              sparsescope::attend(x, x, x, Dense{}, r.part("s", part_named("a")));
            }),
            "Recorder: site 's' was observed whole and in parts; call take() after each forward pass");
  EXPECT_EQ(message([&](sv::Recorder& r) { sparsescope::attend(x, x, x, Dense{}, r.part("s", part_named("a/b"))); }),
            "Recorder: site 's', part 'a/b': a part's name must be letters, digits, '_', '.' or '-'");
  EXPECT_EQ(message([&](sv::Recorder& r) {
              sv::SitePart p = part_named("a", sv::SitePart::Merge::Lse);
              p.gate = at::ones({1, 1, 4});
              sparsescope::attend(x, x, x, Dense{}, r.part("s", p));
            }),
            "Recorder: site 's', part 'a': a part merged by log-sum-exp takes no gate");
  EXPECT_EQ(message([&](sv::Recorder& r) {
              sv::SitePart p = part_named("a");
              p.keys = at::tensor({0, 1, 2, 9}, at::kLong);
              p.site_keys = 6;
              sparsescope::attend(x, x, x, Dense{}, r.part("s", p));
            }),
            "Recorder: site 's', part 'a': SitePart::keys holds indices outside [0, 6)");
  EXPECT_EQ(message([&](sv::Recorder& r) {
              sv::SitePart p = part_named("a");
              p.site_queries = 8;
              sparsescope::attend(x, x, x, Dense{}, r.part("s", p));
            }),
            "Recorder: site 's', part 'a' runs 4 queries of the site's 8 without SitePart::queries");
}
