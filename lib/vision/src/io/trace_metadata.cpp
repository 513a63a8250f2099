// Note [trace file]
// A trace is a safetensors file whose metadata key "sparsescope" holds JSON describing everything
// else (format_version 2):
//   {"format_version": 2, "model", "method", "input", "frame", "producer",
//    "topk": [{"class", "score", "label" (optional)}] (optional),
//    "layout": {"kind": "grid" | "points" | "cross", "prefix", "grid": [T, H, W] or [], "points"
//               (points layout), "words": [text...] and "regions": [[x1, y1, x2, y2]...] (cross
//               layout), "visible": [patch...] (grid layout, optional), "segments": [{"kind",
//               "start", "end"}]},
//    "pooling": "mean", "stats_columns": ["recall", "density", "entropy"],
//    "versions": {"sparsescope", "libtorch"} (of the writer; "producer" names the recorder),
//    "sites": [{"name", "kind": "attention" | "channel" | "kernel", "pattern", "queries", "keys",
//               "pool", "heads", "mask_heads", "rows",
//               "parts": [{"name", "merge": "sum" | "lse", "mask_heads", "gate_heads"}],
//               "from": "text" | "region" (cross layout), "subset": "visible" (optional)}]}
// and the tensors are exactly `input/image` (optional), `input/coords` (int32 [points, 3], points
// layout only) plus, per site, `<site>/probs`, `/mask`, `/stats`, `/rows`, `/row_queries` and per
// part `<site>/parts/<part>/probs`, `/mask`, `/gate` (src/trace/trace_file.cpp). Format 1 is format
// 2 without layout.kind, layout.points, sites[].kind and sites[].parts; it is still read. The
// sites of a cross layout attend from its words to its regions or back, as "from" says; a site of
// subset "visible" runs over the prefix and the layout's visible patches (MAE's encoder). Traces
// come from outside (other machines, Python), so the reader trusts nothing: every number in the
// JSON is range-checked before it sizes anything, and every tensor must have the dtype and the
// shape the JSON implies.
#include "sparsescope/vision/trace_metadata.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

using nlohmann::json;

constexpr int64_t kFormatVersion = 2;
constexpr int64_t kFirstFormatVersion = 1;
// Bounds that keep every derived shape and byte count far from overflow; real traces are orders of
// magnitude below them.
constexpr int64_t kMaxTokens = int64_t{1} << 31;
constexpr int64_t kMaxHeads = 1 << 16;
constexpr int64_t kMaxGridExtent = 1 << 20;
constexpr int64_t kMaxCrossTokens = 1 << 20;  // words, and regions, of a cross layout

// Reads typed, range-checked members of the metadata JSON; errors name the file and the key path.
class MetadataReader {
 public:
  explicit MetadataReader(std::string file) : file_(std::move(file)) {}

  const json& member(const json& object, const std::string& key, const std::string& where) const {
    const std::string path = where.empty() ? key : where + "." + key;
    SPARSESCOPE_CHECK(object.is_object() && object.contains(key), prefix(), "metadata key '", path, "' is missing");
    return object.at(key);
  }
  int64_t integer(const json& object, const std::string& key, const std::string& where, int64_t lo, int64_t hi) const {
    return integer_value(member(object, key, where), where.empty() ? key : where + "." + key, lo, hi);
  }
  int64_t integer_value(const json& value, const std::string& path, int64_t lo, int64_t hi) const {
    SPARSESCOPE_CHECK(value.is_number_integer(), prefix(), "metadata key '", path, "' must be an integer, got ",
                      value.dump());
    const int64_t v = value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                          ? INT64_MAX
                          : value.get<int64_t>();
    SPARSESCOPE_CHECK(v >= lo && v <= hi, prefix(), "metadata key '", path, "' is ", v, ", outside [", lo, ", ", hi,
                      "]");
    return v;
  }
  std::string text(const json& object, const std::string& key, const std::string& where) const {
    const json& value = member(object, key, where);
    SPARSESCOPE_CHECK(value.is_string(), prefix(), "metadata key '", where.empty() ? key : where + "." + key,
                      "' must be a string, got ", value.dump());
    return value.get<std::string>();
  }
  double real(const json& object, const std::string& key, const std::string& where, double lo, double hi) const {
    const json& value = member(object, key, where);
    const std::string path = where.empty() ? key : where + "." + key;
    SPARSESCOPE_CHECK(value.is_number(), prefix(), "metadata key '", path, "' must be a number, got ", value.dump());
    const double v = value.get<double>();
    SPARSESCOPE_CHECK(v >= lo && v <= hi, prefix(), "metadata key '", path, "' is ", v, ", outside [", lo, ", ", hi,
                      "]");
    return v;
  }
  const json& array(const json& object, const std::string& key, const std::string& where) const {
    const json& value = member(object, key, where);
    SPARSESCOPE_CHECK(value.is_array(), prefix(), "metadata key '", where.empty() ? key : where + "." + key,
                      "' must be an array");
    return value;
  }
  std::string prefix() const { return "trace '" + file_ + "': "; }

 private:
  std::string file_;
};

// The words and regions of a cross layout (which has no prefix and no grid).
void read_cross(const MetadataReader& r, const json& j, TokenLayout& layout) {
  SPARSESCOPE_CHECK(r.integer(j, "prefix", "layout", 0, kMaxTokens) == 0 && r.array(j, "grid", "layout").empty(), r.prefix(),
                    "a cross layout has no prefix and no grid");
  const json& words = r.array(j, "words", "layout");
  const json& regions = r.array(j, "regions", "layout");
  SPARSESCOPE_CHECK(!words.empty() && !regions.empty() && static_cast<int64_t>(words.size()) <= kMaxCrossTokens &&
                        static_cast<int64_t>(regions.size()) <= kMaxCrossTokens,
                    r.prefix(), "a cross layout needs 1 to ", kMaxCrossTokens, " words and regions, got ", words.size(),
                    " and ", regions.size());
  for (const json& w : words) {
    SPARSESCOPE_CHECK(w.is_string(), r.prefix(), "metadata key 'layout.words[]' must be a string, got ", w.dump());
    layout.words.push_back(w.get<std::string>());
  }
  for (const json& box : regions) {
    SPARSESCOPE_CHECK(box.is_array() && box.size() == 4, r.prefix(),
                      "metadata key 'layout.regions[]' must be [x1, y1, x2, y2], got ", box.dump());
    std::array<float, 4> b{};
    for (std::size_t k = 0; k < 4; ++k) {
      SPARSESCOPE_CHECK(box[k].is_number() && std::abs(box[k].get<double>()) <= kMaxGridExtent, r.prefix(),
                        "metadata key 'layout.regions[]' ", box.dump(), " must hold numbers within +-", kMaxGridExtent);
      b[k] = box[k].get<float>();
    }
    SPARSESCOPE_CHECK(b[0] <= b[2] && b[1] <= b[3], r.prefix(), "metadata key 'layout.regions[]' ", box.dump(),
                      " is not x1 <= x2, y1 <= y2");
    layout.regions.push_back(b);
  }
}

TokenLayout read_layout(const MetadataReader& r, const json& meta, int64_t version) {
  const json& j = r.member(meta, "layout", "");
  TokenLayout layout;
  if (version >= 2) {
    layout.kind = r.text(j, "kind", "layout");
    SPARSESCOPE_CHECK(layout.kind == kGridLayout || layout.kind == kPointsLayout || layout.kind == kCrossLayout,
                      r.prefix(), "metadata key 'layout.kind' is '", layout.kind,
                      "', expected 'grid', 'points' or 'cross'");
  }
  layout.prefix = r.integer(j, "prefix", "layout", 0, kMaxTokens);
  if (layout.kind == kPointsLayout) layout.points = r.integer(j, "points", "layout", 0, kMaxTokens - layout.prefix);
  const json& grid = r.array(j, "grid", "layout");
  SPARSESCOPE_CHECK(layout.kind == kGridLayout || grid.empty(), r.prefix(),
                    "metadata key 'layout.grid' must be [] for a points layout, got ", grid.dump());
  SPARSESCOPE_CHECK(grid.empty() || grid.size() == 3, r.prefix(),
                    "metadata key 'layout.grid' must be [T, H, W] or [], got ", grid.dump());
  if (layout.kind == kCrossLayout) read_cross(r, j, layout);
  int64_t tokens = layout.prefix + layout.points + static_cast<int64_t>(layout.words.size() + layout.regions.size());
  if (!grid.empty()) {
    int64_t grid_tokens = 1;
    for (std::size_t i = 0; i < grid.size(); ++i) {
      const int64_t extent = r.integer_value(grid[i], "layout.grid", 1, kMaxGridExtent);
      layout.grid.push_back(extent);
      grid_tokens *= extent;  // at most 2^60: no overflow
      SPARSESCOPE_CHECK(grid_tokens <= kMaxTokens, r.prefix(), "metadata key 'layout.grid' ", grid.dump(),
                        " has more than ", kMaxTokens, " tokens");
    }
    tokens += grid_tokens;
  }
  if (j.contains("visible")) {
    SPARSESCOPE_CHECK(layout.kind == kGridLayout && !layout.grid.empty(), r.prefix(),
                      "metadata key 'layout.visible' needs a grid layout");
    const int64_t grid_tokens = tokens - layout.prefix;
    std::set<int64_t> seen;
    for (const json& v : r.array(j, "visible", "layout")) {
      const int64_t patch = r.integer_value(v, "layout.visible[]", 0, grid_tokens - 1);
      SPARSESCOPE_CHECK(seen.insert(patch).second, r.prefix(), "metadata key 'layout.visible' lists patch ", patch,
                        " twice");
      layout.visible.push_back(patch);
    }
  }
  for (const json& segment : r.array(j, "segments", "layout")) {
    TokenLayout::Segment s;
    s.kind = r.text(segment, "kind", "layout.segments[]");
    s.start = r.integer(segment, "start", "layout.segments[]", 0, tokens);
    s.end = r.integer(segment, "end", "layout.segments[]", s.start, tokens);
    layout.segments.push_back(s);
  }
  return layout;
}

json info_object(const TraceInfo& info) {
  json segments = json::array();
  for (const auto& seg : info.layout.segments)
    segments.push_back({{"kind", seg.kind}, {"start", seg.start}, {"end", seg.end}});
  json layout = {{"kind", info.layout.kind},
                 {"prefix", info.layout.prefix},
                 {"grid", info.layout.grid},
                 {"segments", segments}};
  if (info.layout.kind == kPointsLayout) layout["points"] = info.layout.points;
  if (!info.layout.visible.empty()) layout["visible"] = info.layout.visible;
  if (info.layout.kind == kCrossLayout) {
    layout["words"] = info.layout.words;
    layout["regions"] = info.layout.regions;
  }
  return {{"model", info.model},
          {"method", info.method},
          {"input", info.input},
          {"frame", info.frame},
          {"producer", info.producer},
          {"topk", info.topk},  // a NaN score is written as null
          {"layout", layout}};
}

}  // namespace

void to_json(json& j, const ClassScore& c) {
  j = {{"class", c.index}, {"score", c.score}};
  if (!c.label.empty()) j["label"] = c.label;
}

bool valid_part_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

int64_t TokenLayout::tokens() const {
  if (kind == kPointsLayout) return prefix + points;
  if (kind == kCrossLayout) return static_cast<int64_t>(words.size() + regions.size());
  int64_t grid_tokens = grid.empty() ? 0 : 1;
  for (const int64_t extent : grid) grid_tokens *= extent;
  return prefix + grid_tokens;
}

void check_cross_site(const TokenLayout& layout, const SiteShape& site, const std::string& prefix) {
  SPARSESCOPE_CHECK(site.from == kCrossText || site.from == kCrossRegion, prefix, "site '", site.name, "': 'from' is '",
                    site.from, "', expected '", kCrossText, "' or '", kCrossRegion, "' (a cross layout's sequences)");
  const auto words = static_cast<int64_t>(layout.words.size()), regions = static_cast<int64_t>(layout.regions.size());
  const bool text = site.from == kCrossText;
  SPARSESCOPE_CHECK(site.queries == (text ? words : regions) && site.keys == (text ? regions : words), prefix, "site '",
                    site.name, "' is ", site.queries, " x ", site.keys, ", from the ", site.from, " it must be ",
                    text ? words : regions, " x ", text ? regions : words, " (", words, " words, ", regions, " regions)");
}

void check_site_subset(const TokenLayout& layout, const SiteShape& site, const std::string& prefix) {
  if (site.subset.empty()) return;
  SPARSESCOPE_CHECK(site.subset == kVisibleTokens, prefix, "site '", site.name, "': subset '", site.subset,
                    "' is not '", kVisibleTokens, "'");
  const int64_t n = layout.prefix + static_cast<int64_t>(layout.visible.size());
  SPARSESCOPE_CHECK(!layout.visible.empty() && site.queries == n && site.keys == n, prefix, "site '", site.name,
                    "' over the visible tokens is ", site.queries, " x ", site.keys, "; the layout has ", layout.prefix,
                    " prefix tokens and ", layout.visible.size(), " visible patches");
}

std::string trace_info_json(const TraceInfo& info) { return info_object(info).dump(); }

std::string trace_metadata_json(const TraceMetadata& m) {
  json sites = json::array();
  for (const SiteShape& s : m.sites) {
    json parts = json::array();
    for (const auto& p : s.parts) {
      parts.push_back({{"name", p.name}, {"merge", p.merge}, {"mask_heads", p.mask_heads}, {"gate_heads", p.gate_heads}});
    }
    json site = {{"name", s.name},
                     {"kind", s.kind},
                     {"parts", parts},
                     {"pattern", s.pattern},
                     {"queries", s.queries},
                     {"keys", s.keys},
                     {"pool", s.pool},
                     {"heads", s.heads},
                     {"mask_heads", s.mask_heads},
                     {"rows", s.rows}};
    if (!s.from.empty()) site["from"] = s.from;
    if (!s.subset.empty()) site["subset"] = s.subset;
    sites.push_back(std::move(site));
  }
  json meta = info_object(m.info);
  meta.update({{"format_version", kFormatVersion},
               {"pooling", "mean"},
               {"versions", {{"sparsescope", m.sparsescope_version}, {"libtorch", m.libtorch_version}}},
               {"stats_columns", {"recall", "density", "entropy"}},
               {"sites", sites}});
  return meta.dump();
}

TraceMetadata parse_trace_metadata(const std::string& text, const std::string& file) {
  const MetadataReader r(file);
  const std::string prefix = r.prefix();
  const json meta = json::parse(text, nullptr, /*allow_exceptions=*/false);
  SPARSESCOPE_CHECK(!meta.is_discarded() && meta.is_object(), prefix,
                    "the \"sparsescope\" metadata is not a JSON object");
  const int64_t version = r.integer(meta, "format_version", "", 0, INT64_MAX);
  SPARSESCOPE_CHECK(version >= kFirstFormatVersion && version <= kFormatVersion, prefix, "format_version ", version,
                    " is not supported (this build reads ", kFirstFormatVersion, " to ", kFormatVersion, ")");

  TraceMetadata m;
  m.info.model = r.text(meta, "model", "");
  m.info.method = r.text(meta, "method", "");
  m.info.input = r.text(meta, "input", "");
  m.info.frame = r.integer(meta, "frame", "", -1, INT64_MAX);
  m.info.producer = r.text(meta, "producer", "");
  m.info.layout = read_layout(r, meta, version);
  if (meta.contains("topk")) {
    for (const json& j : r.array(meta, "topk", "")) {
      ClassScore c;
      c.index = r.integer(j, "class", "topk[]", 0, INT32_MAX);
      // A model that overflowed (NaN logits) writes its scores as null.
      const bool nan = j.contains("score") && j["score"].is_null();
      c.score = nan ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(r.real(j, "score", "topk[]", 0.0, 1.0));
      if (j.contains("label")) c.label = r.text(j, "label", "topk[]");
      m.info.topk.push_back(std::move(c));
    }
  }
  if (meta.contains("versions")) {
    const json& v = meta.at("versions");
    if (v.is_object() && v.contains("sparsescope") && v["sparsescope"].is_string()) {
      m.sparsescope_version = v["sparsescope"].get<std::string>();
    }
    if (v.is_object() && v.contains("libtorch") && v["libtorch"].is_string()) {
      m.libtorch_version = v["libtorch"].get<std::string>();
    }
  }

  std::set<std::string> names;
  for (const json& j : r.array(meta, "sites", "")) {
    SiteShape s;
    s.name = r.text(j, "name", "sites[]");
    const std::string where = "sites[" + s.name + "]";
    SPARSESCOPE_CHECK(!s.name.empty(), prefix, "a site has an empty name");
    SPARSESCOPE_CHECK(names.insert(s.name).second, prefix, "site '", s.name, "' is listed twice");
    s.pattern = r.text(j, "pattern", where);
    s.queries = r.integer(j, "queries", where, 1, kMaxTokens);
    s.keys = r.integer(j, "keys", where, 1, kMaxTokens);
    s.pool = r.integer(j, "pool", where, 1, std::max(s.queries, s.keys));
    s.heads = r.integer(j, "heads", where, 1, kMaxHeads);
    s.mask_heads = r.integer(j, "mask_heads", where, 1, s.heads);
    SPARSESCOPE_CHECK(s.mask_heads == 1 || s.mask_heads == s.heads, prefix, "metadata key '", where,
                      ".mask_heads' is ", s.mask_heads, ", expected 1 or ", s.heads);
    s.rows = r.integer(j, "rows", where, 0, s.queries);
    if (version >= 2) {
      s.kind = r.text(j, "kind", where);
      SPARSESCOPE_CHECK(s.kind == kAttentionMap || s.kind == kChannelMap || s.kind == kKernelMap, prefix,
                        "metadata key '", where, ".kind' is '", s.kind, "', expected 'attention', 'channel' or 'kernel'");
      std::set<std::string> part_names;
      for (const json& pj : r.array(j, "parts", where)) {
        SiteShape::Part p;
        p.name = r.text(pj, "name", where + ".parts[]");
        const std::string part_where = where + ".parts[" + p.name + "]";
        SPARSESCOPE_CHECK(valid_part_name(p.name), prefix, "metadata key '", part_where,
                          "': a part's name must be letters, digits, '_', '.' or '-'");
        SPARSESCOPE_CHECK(part_names.insert(p.name).second, prefix, "part '", p.name, "' of site '", s.name,
                          "' is listed twice");
        p.merge = r.text(pj, "merge", part_where);
        SPARSESCOPE_CHECK(p.merge == "sum" || p.merge == "lse", prefix, "metadata key '", part_where,
                          ".merge' is '", p.merge, "', expected 'sum' or 'lse'");
        for (auto [key, field] : {std::pair{"mask_heads", &p.mask_heads}, {"gate_heads", &p.gate_heads}}) {
          *field = r.integer(pj, key, part_where, 1, s.heads);
          SPARSESCOPE_CHECK(*field == 1 || *field == s.heads, prefix, "metadata key '", part_where, ".", key,
                            "' is ", *field, ", expected 1 or ", s.heads);
        }
        s.parts.push_back(std::move(p));
      }
      SPARSESCOPE_CHECK(s.parts.empty() || s.kind == kAttentionMap, prefix, "site '", s.name, "' of kind '", s.kind,
                        "' has parts");
    }
    if (m.info.layout.kind == kCrossLayout) {
      s.from = r.text(j, "from", where);
      check_cross_site(m.info.layout, s, prefix);
    }
    if (j.contains("subset")) {
      s.subset = r.text(j, "subset", where);
      check_site_subset(m.info.layout, s, prefix);
    }
    m.sites.push_back(std::move(s));
  }
  return m;
}

}  // namespace sparsescope::vision
