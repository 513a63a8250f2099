// Trace files: what is written reads back, and files from outside that do not follow the format are
// refused with an error naming the file and the tensor or key, never a crash.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/trace.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
namespace sv = sparsescope::vision;

namespace {

sv::SiteTrace make_site(const std::string& name, int64_t heads, int64_t n, int64_t m, int64_t pool,
                        std::vector<int64_t> rows) {
  sv::SiteTrace s;
  s.name = name;
  s.pattern = "topk";
  s.queries = n;
  s.keys = m;
  s.pool = pool;
  const int64_t np = (n + pool - 1) / pool, mp = (m + pool - 1) / pool;
  s.probs = at::rand({heads, np, mp});
  s.mask = pool == 1 ? at::randint(0, 2, {heads, np, mp}).to(at::kFloat) : at::rand({1, np, mp});
  s.stats = at::rand({heads, sv::kStatColumns});
  s.stats[0][sv::kRecall] = std::numeric_limits<float>::quiet_NaN();
  s.row_queries = at::tensor(rows, at::kLong).view({static_cast<int64_t>(rows.size())});
  s.rows = at::rand({heads, static_cast<int64_t>(rows.size()), m});
  return s;
}

sv::Trace make_trace() {
  at::manual_seed(0);
  sv::Trace t;
  t.info.model = "vit_tiny_patch16_224";
  t.info.method = "dense";
  t.info.input = "photos/cat.png";
  t.info.frame = 30;
  t.info.producer = "test";
  t.info.topk = {{9, 0.75f, "Ankle boot"}, {5, 0.25f, ""}};
  t.info.layout.prefix = 1;
  t.info.layout.grid = {1, 3, 4};
  t.info.layout.segments = {{"prefix", 0, 1}, {"image", 1, 13}};
  t.image = at::randint(0, 256, {24, 32, 3}).to(at::kByte);
  t.sites.push_back(make_site("blocks.0.attn", 3, 13, 13, 1, {}));
  t.sites.push_back(make_site("blocks.1.attn", 3, 13, 13, 4, {0, 5}));
  return t;
}

class TraceFile : public sparsescope::test::TempDirTest {
 protected:
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Rewrites a saved trace with its metadata JSON edited and/or tensors replaced.
  std::string rewrite(const std::string& name, const std::function<void(nlohmann::json&)>& edit_meta,
                      const std::function<void(sv::NamedTensors&)>& edit_tensors = {}) {
    const auto original = path("original.safetensors");
    sv::save_trace(make_trace(), original);
    auto file = sv::load_safetensors(original);
    auto meta = nlohmann::json::parse(file.metadata.at("sparsescope"));
    if (edit_meta) edit_meta(meta);
    if (edit_tensors) edit_tensors(file.tensors);
    sv::save_safetensors(path(name), file.tensors, {{"sparsescope", meta.dump()}});
    return path(name);
  }

  // load_trace must refuse `file` with a sparsescope::Error whose message has every one of `parts`.
  static void expect_refused(const std::string& file, const std::vector<std::string>& parts) {
    try {
      sv::load_trace(file);
      FAIL() << "no error for " << file;
    } catch (const sparsescope::Error& e) {
      const std::string msg = e.what();
      for (const auto& part : parts) EXPECT_NE(msg.find(part), std::string::npos) << msg;
    }
  }

};

TEST_F(TraceFile, RoundTripsEverything) {
  const auto trace = make_trace();
  sv::save_trace(trace, path("t.safetensors"));
  const auto back = sv::load_trace(path("t.safetensors"));
  EXPECT_EQ(back.info.model, trace.info.model);
  EXPECT_EQ(back.info.method, trace.info.method);
  EXPECT_EQ(back.info.input, trace.info.input);
  EXPECT_EQ(back.info.frame, 30);
  EXPECT_EQ(back.info.producer, "test");
  ASSERT_EQ(back.info.topk.size(), 2u);
  EXPECT_EQ(back.info.topk[0].index, 9);
  EXPECT_EQ(back.info.topk[0].score, 0.75f);
  EXPECT_EQ(back.info.topk[0].label, "Ankle boot");
  EXPECT_EQ(back.info.topk[1].index, 5);
  EXPECT_EQ(back.info.topk[1].label, "") << "unnamed classes stay unnamed";
  EXPECT_EQ(back.info.layout.prefix, 1);
  EXPECT_EQ(back.info.layout.grid, trace.info.layout.grid);
  ASSERT_EQ(back.info.layout.segments.size(), 2u);
  EXPECT_EQ(back.info.layout.segments[1].kind, "image");
  EXPECT_EQ(back.info.layout.segments[1].end, 13);
  EXPECT_TRUE(at::equal(back.image, trace.image));
  ASSERT_EQ(back.sites.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto &a = trace.sites[i], &b = back.sites[i];
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.pattern, a.pattern);
    EXPECT_EQ(b.queries, a.queries);
    EXPECT_EQ(b.keys, a.keys);
    EXPECT_EQ(b.pool, a.pool);
    EXPECT_EQ(b.probs.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::allclose(b.probs, a.probs, 1e-3, 1e-4)) << "stored as float16";
    EXPECT_LE((b.mask - a.mask).abs().max().item<float>(), 0.5f / 255 + 1e-6f) << "stored in 1/255 steps";
    EXPECT_TRUE(at::allclose(b.stats, a.stats, 0, 0, /*equal_nan=*/true));
    EXPECT_TRUE(at::equal(b.row_queries, a.row_queries));
    EXPECT_TRUE(at::equal(b.rows, a.rows));
  }
  EXPECT_TRUE(at::equal(back.sites[0].mask, trace.sites[0].mask)) << "0/1 masks are exact";
  EXPECT_EQ(&back.site("blocks.1.attn"), &back.sites[1]);
  try {
    back.site("blocks.9.attn");
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.0.attn, blocks.1.attn"), std::string::npos) << e.what();
  }
}

// Format 2: a site in parts, a map handed over and tokens at voxel coordinates.
TEST_F(TraceFile, PartsMapsAndPointLayoutsRoundTrip) {
  sv::Trace t = make_trace();
  t.info.layout = {};
  t.info.layout.kind = sv::kPointsLayout;
  t.info.layout.prefix = 1;
  t.info.layout.points = 12;
  t.coords = at::randint(0, 64, {12, 3}).to(at::kInt);
  const std::vector<sv::PartTrace> want = {
      {"window", "sum", at::rand({3, 4, 4}), at::rand({1, 4, 4}), at::rand({3, 4})},
      {"selected", "lse", at::rand({3, 4, 4}), at::rand({3, 4, 4}), at::rand({1, 4})}};
  t.sites[1].pattern = "neighborhood+topk";
  t.sites[1].parts = want;
  sv::SiteTrace map = make_site("gsa", 3, 6, 6, 1, {});
  map.kind = sv::kChannelMap;
  map.probs = at::randn({3, 6, 6}) * 100;  // not probabilities: stored in float32
  t.sites.push_back(map);
  sv::save_trace(t, path("v2.safetensors"));
  const auto back = sv::load_trace(path("v2.safetensors"));
  EXPECT_EQ(back.info.layout.kind, sv::kPointsLayout);
  EXPECT_EQ(back.info.layout.points, 12);
  EXPECT_EQ(back.info.layout.tokens(), 13);
  EXPECT_TRUE(at::equal(back.coords, t.coords));
  EXPECT_EQ(back.sites[0].kind, sv::kAttentionMap);
  EXPECT_TRUE(back.sites[0].parts.empty());
  const auto& parts = back.sites[1].parts;
  ASSERT_EQ(parts.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(parts[i].name, want[i].name);
    EXPECT_EQ(parts[i].merge, want[i].merge);
    EXPECT_TRUE(at::allclose(parts[i].probs, want[i].probs, 1e-3, 1e-4));
    EXPECT_LE((parts[i].mask - want[i].mask).abs().max().item<float>(), 0.5f / 255 + 1e-6f);
    EXPECT_TRUE(at::equal(parts[i].gate, want[i].gate));
  }
  EXPECT_EQ(back.sites[2].kind, sv::kChannelMap);
  EXPECT_TRUE(at::equal(back.sites[2].probs, map.probs));

  t.sites[1].parts[1].gate = at::rand({2, 4});
  EXPECT_THROW(sv::save_trace(t, path("bad.safetensors")), sparsescope::Error);
  t.coords = at::Tensor();
  EXPECT_THROW(sv::save_trace(t, path("bad.safetensors")), sparsescope::Error);
  EXPECT_FALSE(fs::exists(path("bad.safetensors")));
}

// A cross layout (DCLIP's teacher): words and regions, sites from one to the other.
TEST_F(TraceFile, CrossLayoutsRoundTripAndAreChecked) {
  sv::Trace t = make_trace();
  t.info.layout = {};
  t.info.layout.kind = sv::kCrossLayout;
  t.info.layout.words = {"a", "cat", "on", "a", "mat"};
  t.info.layout.regions = {{1, 2, 10, 12}, {0, 0, 31.5f, 23}};
  t.info.layout.segments = {{"text", 0, 5}, {"region", 5, 7}};
  t.sites = {make_site("cross.text_to_image", 2, 5, 2, 1, {}), make_site("cross.image_to_text", 2, 2, 5, 1, {})};
  EXPECT_THROW(sv::save_trace(t, path("cross.safetensors")), sparsescope::Error);  // no `from`
  t.sites[0].from = sv::kCrossText;
  t.sites[1].from = sv::kCrossRegion;
  sv::save_trace(t, path("cross.safetensors"));
  const auto back = sv::load_trace(path("cross.safetensors"));
  EXPECT_EQ(back.info.layout.kind, sv::kCrossLayout);
  EXPECT_EQ(back.info.layout.words, t.info.layout.words);
  EXPECT_EQ(back.info.layout.regions, t.info.layout.regions);
  EXPECT_EQ(back.info.layout.tokens(), 7);
  ASSERT_EQ(back.sites.size(), 2u);
  EXPECT_EQ(back.sites[1].queries, 2);
  EXPECT_EQ(back.sites[1].from, sv::kCrossRegion);

  auto edit = [&](const std::string& name, const std::function<void(nlohmann::json&)>& change) {
    auto file = sv::load_safetensors(path("cross.safetensors"));
    auto meta = nlohmann::json::parse(file.metadata.at("sparsescope"));
    change(meta);
    sv::save_safetensors(path(name), file.tensors, {{"sparsescope", meta.dump()}});
    return path(name);
  };
  expect_refused(edit("box.safetensors", [](auto& m) { m["layout"]["regions"][0] = {5, 5, 1, 1}; }),
                 {"layout.regions[]", "x1 <= x2"});
  expect_refused(edit("box3.safetensors", [](auto& m) { m["layout"]["regions"][1] = {0, 0, 3}; }),
                 {"layout.regions[]", "[x1, y1, x2, y2]"});
  expect_refused(edit("word.safetensors", [](auto& m) { m["layout"]["words"][2] = 7; }), {"layout.words[]", "string"});
  expect_refused(edit("none.safetensors", [](auto& m) { m["layout"]["regions"] = nlohmann::json::array(); }),
                 {"cross layout needs"});
  expect_refused(edit("size.safetensors", [](auto& m) { m["layout"]["words"].push_back("extra"); }),
                 {"cross.text_to_image", "it must be 6 x 2"});
  expect_refused(edit("from.safetensors", [](auto& m) { m["sites"][1]["from"] = "text"; }),
                 {"cross.image_to_text", "is 2 x 5, from the text it must be 5 x 2"});
  expect_refused(edit("from2.safetensors", [](auto& m) { m["sites"][1].erase("from"); }), {"from", "missing"});
  expect_refused(edit("grid.safetensors", [](auto& m) { m["layout"]["prefix"] = 1; }), {"no prefix and no grid"});
}

// Sites over the visible tokens (MAE's encoder) beside sites over all of them.
TEST_F(TraceFile, VisibleSubsetsRoundTripAndAreChecked) {
  sv::Trace t = make_trace();  // class token + 3 x 4 grid
  t.info.layout.visible = {7, 2, 11};
  t.sites[0] = make_site("blocks.0.attn", 3, 4, 4, 1, {});
  t.sites[0].subset = sv::kVisibleTokens;
  sv::save_trace(t, path("visible.safetensors"));
  const auto back = sv::load_trace(path("visible.safetensors"));
  EXPECT_EQ(back.info.layout.visible, (std::vector<int64_t>{7, 2, 11}));
  EXPECT_EQ(back.sites[0].subset, sv::kVisibleTokens);
  EXPECT_TRUE(back.sites[1].subset.empty());
  t.sites[0].subset.clear();  // 4 x 4 is not the layout's 13 tokens: only as a visible subset
  t.sites[1].subset = sv::kVisibleTokens;
  EXPECT_THROW(sv::save_trace(t, path("bad.safetensors")), sparsescope::Error);

  auto edit = [&](const std::string& name, const std::function<void(nlohmann::json&)>& change) {
    auto file = sv::load_safetensors(path("visible.safetensors"));
    auto meta = nlohmann::json::parse(file.metadata.at("sparsescope"));
    change(meta);
    sv::save_safetensors(path(name), file.tensors, {{"sparsescope", meta.dump()}});
    return path(name);
  };
  expect_refused(edit("twice.safetensors", [](auto& m) { m["layout"]["visible"] = {7, 2, 7}; }), {"patch 7 twice"});
  expect_refused(edit("range.safetensors", [](auto& m) { m["layout"]["visible"] = {7, 2, 12}; }),
                 {"layout.visible[]", "12"});
  expect_refused(edit("size.safetensors", [](auto& m) { m["layout"]["visible"] = {7, 2}; }),
                 {"blocks.0.attn", "over the visible tokens is 4 x 4", "2 visible patches"});
  expect_refused(edit("subset.safetensors", [](auto& m) { m["sites"][0]["subset"] = "hidden"; }), {"subset 'hidden'"});
}

// Traces of format 1 (no kinds, parts or layout kinds) still open.
TEST_F(TraceFile, FormatOneStillReads) {
  const auto back = sv::load_trace(rewrite("v1.safetensors", [](auto& m) {
    m["format_version"] = 1;
    m["layout"].erase("kind");
    for (auto& site : m["sites"]) {
      site.erase("kind");
      site.erase("parts");
    }
  }));
  ASSERT_EQ(back.sites.size(), 2u);
  EXPECT_EQ(back.info.layout.kind, sv::kGridLayout);
  EXPECT_EQ(back.sites[1].kind, sv::kAttentionMap);
  EXPECT_TRUE(back.sites[1].parts.empty());
  expect_refused(rewrite("v2_without_kind.safetensors", [](auto& m) { m["sites"][0].erase("kind"); }),
                 {"sites[blocks.0.attn].kind", "missing"});
  expect_refused(rewrite("part_merge.safetensors",
                         [](auto& m) {
                           m["sites"][0]["parts"] = {{{"name", "a"}, {"merge", "max"}, {"mask_heads", 1}, {"gate_heads", 1}}};
                         }),
                 {"parts[a].merge", "'max'"});
  expect_refused(rewrite("part_tensors.safetensors",
                         [](auto& m) {
                           m["sites"][0]["parts"] = {{{"name", "a"}, {"merge", "sum"}, {"mask_heads", 1}, {"gate_heads", 1}}};
                         }),
                 {"blocks.0.attn/parts/a/probs", "missing"});
  expect_refused(rewrite("points.safetensors", [](auto& m) { m["layout"]["kind"] = "points"; }), {"layout.points"});
}

TEST_F(TraceFile, TracesWithoutImageOrSitesAreValid) {
  sv::Trace empty;
  sv::save_trace(empty, path("empty.safetensors"));
  const auto back = sv::load_trace(path("empty.safetensors"));
  EXPECT_TRUE(back.info.topk.empty());
  EXPECT_FALSE(back.image.defined());
  EXPECT_TRUE(back.sites.empty());
}

// Traces written before predictions were stored, and by models whose scores overflowed.
TEST_F(TraceFile, PredictionsAreOptional) {
  EXPECT_TRUE(sv::load_trace(rewrite("old.safetensors", [](auto& m) { m.erase("topk"); })).info.topk.empty());
  const auto nan = sv::load_trace(rewrite("nan.safetensors", [](auto& m) { m["topk"][0]["score"] = nullptr; }));
  ASSERT_EQ(nan.info.topk.size(), 2u);
  EXPECT_TRUE(std::isnan(nan.info.topk[0].score));
}

TEST_F(TraceFile, RefusesFilesThatAreNotTraces) {
  sv::save_safetensors(path("weights.safetensors"), {{"w", at::zeros({2})}});
  expect_refused(path("weights.safetensors"), {"weights.safetensors", "not a sparsescope trace"});
  std::ofstream(path("garbage.safetensors")) << "garbage";
  expect_refused(path("garbage.safetensors"), {"garbage.safetensors"});
  expect_refused(path("missing.safetensors"), {"missing.safetensors"});
  sv::save_safetensors(path("json.safetensors"), {}, {{"sparsescope", "{not json"}});
  expect_refused(path("json.safetensors"), {"not a JSON object"});
}

TEST_F(TraceFile, RefusesMetadataThatDisagreesWithTheTensors) {
  expect_refused(rewrite("version.safetensors", [](auto& m) { m["format_version"] = 3; }), {"format_version 3"});
  expect_refused(rewrite("heads.safetensors", [](auto& m) { m["sites"][1]["heads"] = 4; }),
                 {"blocks.1.attn/probs", "[3, 4, 4]", "expected [4, 4, 4]"});
  expect_refused(rewrite("pool.safetensors", [](auto& m) { m["sites"][1]["pool"] = 3; }),
                 {"blocks.1.attn/probs", "expected [3, 5, 5]"});
  expect_refused(rewrite("rows.safetensors", [](auto& m) { m["sites"][1]["rows"] = 1; }), {"blocks.1.attn/rows"});
  expect_refused(rewrite("queries.safetensors", [](auto& m) { m["sites"][0]["queries"] = -5; }),
                 {"sites[blocks.0.attn].queries", "-5"});
  expect_refused(rewrite("type.safetensors", [](auto& m) { m["sites"][0]["keys"] = "13"; }),
                 {"keys", "must be an integer"});
  expect_refused(rewrite("huge.safetensors", [](auto& m) { m["sites"][0]["heads"] = 1ull << 62; }), {"heads"});
  expect_refused(rewrite("missing_key.safetensors", [](auto& m) { m.erase("layout"); }), {"'layout' is missing"});
  expect_refused(rewrite("grid.safetensors", [](auto& m) { m["layout"]["grid"] = {1, 2}; }), {"layout.grid"});
  expect_refused(rewrite("segment.safetensors", [](auto& m) { m["layout"]["segments"][1]["end"] = 99; }),
                 {"layout.segments[].end", "99"});
  expect_refused(rewrite("twice.safetensors", [](auto& m) { m["sites"][1]["name"] = "blocks.0.attn"; }),
                 {"listed twice"});
  expect_refused(rewrite("topk_class.safetensors", [](auto& m) { m["topk"][0]["class"] = -1; }), {"topk[].class", "-1"});
  expect_refused(rewrite("topk_score.safetensors", [](auto& m) { m["topk"][1]["score"] = 1.5; }), {"topk[].score", "1.5"});
  expect_refused(rewrite("topk_label.safetensors", [](auto& m) { m["topk"][0]["label"] = 3; }),
                 {"topk[].label", "must be a string"});
  expect_refused(rewrite("topk_array.safetensors", [](auto& m) { m["topk"] = "Ankle boot"; }),
                 {"'topk' must be an array"});
  expect_refused(rewrite("mask_heads.safetensors", [](auto& m) { m["sites"][1]["mask_heads"] = 2; }),
                 {"mask_heads", "expected 1 or 3"});
  expect_refused(rewrite("dtype.safetensors", {},
                         [](sv::NamedTensors& t) {
                           for (auto& [name, tensor] : t)
                             if (name == "blocks.0.attn/mask") tensor = tensor.to(at::kFloat);
                         }),
                 {"blocks.0.attn/mask", "dtype Float", "expected Byte"});
  expect_refused(rewrite("extra.safetensors", {}, [](sv::NamedTensors& t) { t.emplace_back("stray", at::zeros({1})); }),
                 {"not described by the metadata: stray"});
  expect_refused(rewrite("absent.safetensors", {},
                         [](sv::NamedTensors& t) {
                           t.erase(std::remove_if(t.begin(), t.end(),
                                                  [](const auto& p) { return p.first == "blocks.1.attn/stats"; }),
                                   t.end());
                         }),
                 {"'blocks.1.attn/stats' is missing"});
  expect_refused(rewrite("row_range.safetensors", {},
                         [](sv::NamedTensors& t) {
                           for (auto& [name, tensor] : t)
                             if (name == "blocks.1.attn/row_queries") tensor = at::tensor({0, 13}, at::kLong);
                         }),
                 {"row_queries", "outside [0, 13)"});
  expect_refused(rewrite("image.safetensors", {},
                         [](sv::NamedTensors& t) {
                           for (auto& [name, tensor] : t)
                             if (name == "input/image") tensor = at::zeros({4, 4}, at::kByte);
                         }),
                 {"input/image", "[H, W, 3]"});
}

// Random damage to the bytes of a valid trace (flips in the header and the data, truncation): every
// outcome is a loaded trace or a sparsescope::Error, the libFuzzer contract without libFuzzer.
TEST_F(TraceFile, SurvivesRandomDamage) {
  sv::save_trace(make_trace(), path("t.safetensors"));
  std::ifstream in(path("t.safetensors"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::mt19937 rng(7);
  int refused = 0;
  for (int round = 0; round < 400; ++round) {
    std::string damaged = bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    // Mostly the JSON header (where the structure is), sometimes anywhere.
    const size_t header = std::min<size_t>(damaged.size(), 8 + 1200);
    for (int f = 0; f < flips; ++f) {
      const size_t at = rng() % 4 == 0 ? rng() % damaged.size() : rng() % header;
      damaged[at] = static_cast<char>(rng() % 256);
    }
    if (round % 10 == 0) damaged.resize(rng() % damaged.size());
    try {
      const auto trace = sv::load_trace(damaged.data(), damaged.size(), "damaged");
      for (const auto& s : trace.sites) EXPECT_EQ(s.probs.dim(), 3);
    } catch (const sparsescope::Error& e) {
      EXPECT_NE(std::string(e.what()).find("damaged"), std::string::npos) << e.what();
      ++refused;
    }
  }
  EXPECT_GT(refused, 100);
}

TEST(TokenLayout, CountsPrefixAndGrid) {
  sv::TokenLayout layout;
  EXPECT_EQ(layout.tokens(), 0);
  layout.prefix = 2;
  EXPECT_EQ(layout.tokens(), 2);
  layout.grid = {2, 3, 4};
  EXPECT_EQ(layout.tokens(), 26);
}

}  // namespace
