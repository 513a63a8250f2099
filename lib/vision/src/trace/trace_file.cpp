// Note [trace file]
// A trace is a safetensors file whose metadata key "sparsescope" holds JSON describing everything
// else (format_version 1):
//   {"format_version": 1, "model", "method", "input", "frame", "producer",
//    "topk": [{"class", "score", "label" (optional)}] (optional: older traces lack it),
//    "layout": {"prefix", "grid": [T, H, W], "segments": [{"kind", "start", "end"}]},
//    "pooling": "mean", "stats_columns": ["recall", "density", "entropy"],
//    "versions": {"sparsescope", "libtorch"} (of the writer; "producer" names the recorder),
//    "sites": [{"name", "pattern", "queries", "keys", "pool", "heads", "mask_heads", "rows"}]}
// and the tensors are exactly `input/image` (optional) plus, per site, `<site>/probs`, `/mask`,
// `/stats`, `/rows`, `/row_queries`. Traces come from outside (other machines, Python), so the
// reader trusts nothing: every number in the JSON is range-checked before it sizes anything, every
// tensor must have the dtype and the shape the JSON implies, and no tensor may be left unexplained.
#include <ATen/ATen.h>

#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "sparsescope/kernels/error.h"
#include "sparsescope/kernels/version.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::vision {

namespace {

using nlohmann::json;

constexpr int64_t kFormatVersion = 1;
constexpr const char* kMetadataKey = "sparsescope";
constexpr const char* kImageTensor = "input/image";
// Bounds that keep every derived shape and byte count far from overflow; real traces are orders of
// magnitude below them.
constexpr int64_t kMaxTokens = int64_t{1} << 31;
constexpr int64_t kMaxHeads = 1 << 16;
constexpr int64_t kMaxGridExtent = 1 << 20;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::vector<int64_t> pooled_shape(int64_t planes, const SiteTrace& s) {
  return {planes, ceil_div(s.queries, s.pool), ceil_div(s.keys, s.pool)};
}

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

TokenLayout read_layout(const MetadataReader& r, const json& meta) {
  const json& j = r.member(meta, "layout", "");
  TokenLayout layout;
  layout.prefix = r.integer(j, "prefix", "layout", 0, kMaxTokens);
  const json& grid = r.array(j, "grid", "layout");
  SPARSESCOPE_CHECK(grid.empty() || grid.size() == 3, r.prefix(),
                    "metadata key 'layout.grid' must be [T, H, W] or [], got ", grid.dump());
  int64_t tokens = layout.prefix;
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
  for (const json& segment : r.array(j, "segments", "layout")) {
    TokenLayout::Segment s;
    s.kind = r.text(segment, "kind", "layout.segments[]");
    s.start = r.integer(segment, "start", "layout.segments[]", 0, tokens);
    s.end = r.integer(segment, "end", "layout.segments[]", s.start, tokens);
    layout.segments.push_back(s);
  }
  return layout;
}

at::Tensor expect_tensor(const std::map<std::string, at::Tensor>& tensors, const std::string& name,
                         std::initializer_list<at::ScalarType> dtypes, const std::vector<int64_t>& shape,
                         const std::string& why, const std::string& prefix) {
  const auto it = tensors.find(name);
  SPARSESCOPE_CHECK(it != tensors.end(), prefix, "tensor '", name, "' is missing");
  const at::Tensor& t = it->second;
  bool dtype_ok = false;
  std::string names;
  for (const auto d : dtypes) {
    dtype_ok = dtype_ok || t.scalar_type() == d;
    names += std::string(names.empty() ? "" : " or ") + c10::toString(d);
  }
  SPARSESCOPE_CHECK(dtype_ok, prefix, "tensor '", name, "' has dtype ", t.scalar_type(), ", expected ", names);
  SPARSESCOPE_CHECK(t.sizes().vec() == shape, prefix, "tensor '", name, "' has shape ", t.sizes(), ", expected ",
                    at::IntArrayRef(shape), " (", why, ")");
  return t;
}

// The writer's check that a site's tensors agree with each other, so that every trace it saves loads.
void check_site_tensors(const SiteTrace& s, const std::string& prefix) {
  const std::string at = prefix + "site '" + s.name + "': ";
  SPARSESCOPE_CHECK(s.probs.defined() && s.probs.dim() == 3, at, "`probs` must be [H, N', M']");
  const int64_t heads = s.probs.size(0);
  SPARSESCOPE_CHECK(heads >= 1, at, "no heads");
  SPARSESCOPE_CHECK(s.probs.sizes().vec() == pooled_shape(heads, s), at, "`probs` has shape ", s.probs.sizes(),
                    ", expected ", at::IntArrayRef(pooled_shape(heads, s)));
  SPARSESCOPE_CHECK(s.mask.defined() &&
                        (s.mask.sizes().vec() == pooled_shape(heads, s) || s.mask.sizes().vec() == pooled_shape(1, s)),
                    at, "`mask` has shape ", s.mask.defined() ? s.mask.sizes() : at::IntArrayRef{}, ", expected ",
                    at::IntArrayRef(pooled_shape(heads, s)), " or one plane");
  SPARSESCOPE_CHECK(s.stats.defined() && s.stats.sizes() == at::IntArrayRef({heads, kStatColumns}), at,
                    "`stats` must be [", heads, ", ", kStatColumns, "]");
  const int64_t rows = s.row_queries.defined() ? s.row_queries.numel() : 0;
  SPARSESCOPE_CHECK(!s.row_queries.defined() || s.row_queries.dim() == 1, at, "`row_queries` must be 1-D");
  if (rows > 0) {
    SPARSESCOPE_CHECK(s.rows.defined() && s.rows.sizes() == at::IntArrayRef({heads, rows, s.keys}), at,
                      "`rows` has shape ", s.rows.defined() ? s.rows.sizes() : at::IntArrayRef{}, ", expected [", heads,
                      ", ", rows, ", ", s.keys, "]");
  }
}

json info_object(const TraceInfo& info) {
  json segments = json::array();
  for (const auto& seg : info.layout.segments)
    segments.push_back({{"kind", seg.kind}, {"start", seg.start}, {"end", seg.end}});
  return {{"model", info.model},
          {"method", info.method},
          {"input", info.input},
          {"frame", info.frame},
          {"producer", info.producer},
          {"topk", info.topk},
          {"layout", {{"prefix", info.layout.prefix}, {"grid", info.layout.grid}, {"segments", segments}}}};
}

}  // namespace

std::string trace_info_json(const TraceInfo& info) { return info_object(info).dump(); }

std::string trace_producer() { return "sparsescope " + version() + " / LibTorch " + torch_version(); }

void save_trace(const Trace& trace, const std::string& path) {
  const std::string prefix = "cannot write trace '" + path + "': ";
  NamedTensors tensors;
  if (trace.image.defined()) {
    SPARSESCOPE_CHECK(trace.image.dim() == 3 && trace.image.size(2) == 3 && trace.image.scalar_type() == at::kByte,
                      prefix, "`image` must be uint8 [H, W, 3], got ", trace.image.sizes(), " of ",
                      trace.image.scalar_type());
    tensors.emplace_back(kImageTensor, trace.image);
  }
  json sites = json::array();
  std::set<std::string> names;
  for (const SiteTrace& s : trace.sites) {
    SPARSESCOPE_CHECK(!s.name.empty() && names.insert(s.name).second, prefix,
                      "site names must be unique and non-empty ('", s.name, "')");
    SPARSESCOPE_CHECK(s.queries >= 1 && s.keys >= 1 && s.pool >= 1, prefix, "site '", s.name, "': queries ", s.queries,
                      ", keys ", s.keys, ", pool ", s.pool, " must be positive");
    check_site_tensors(s, prefix);
    const at::Tensor row_queries = s.row_queries.defined() ? s.row_queries.to(at::kLong) : at::empty({0}, at::kLong);
    SPARSESCOPE_CHECK(
        row_queries.numel() == 0 || row_queries.ge(0).logical_and(row_queries.lt(s.queries)).all().item<bool>(), prefix,
        "site '", s.name, "': `row_queries` must lie in [0, ", s.queries, ")");
    const at::Tensor rows = row_queries.numel() > 0 ? s.rows.to(at::kFloat) : at::empty({s.heads(), 0, s.keys});
    tensors.emplace_back(s.name + "/probs", s.probs.to(at::kHalf));
    // The kept fraction in 1/255 steps: exact for the 0/1 masks of full maps, and one byte per cell.
    tensors.emplace_back(s.name + "/mask", (s.mask.to(at::kFloat) * 255).round().clamp(0, 255).to(at::kByte));
    tensors.emplace_back(s.name + "/stats", s.stats.to(at::kFloat));
    tensors.emplace_back(s.name + "/rows", rows);
    tensors.emplace_back(s.name + "/row_queries", row_queries);
    sites.push_back({{"name", s.name},
                     {"pattern", s.pattern},
                     {"queries", s.queries},
                     {"keys", s.keys},
                     {"pool", s.pool},
                     {"heads", s.heads()},
                     {"mask_heads", s.mask.size(0)},
                     {"rows", row_queries.numel()}});
  }
  json meta = info_object(trace.info);
  meta.update({{"format_version", kFormatVersion},
               {"pooling", "mean"},
               {"versions", {{"sparsescope", version()}, {"libtorch", torch_version()}}},
               {"stats_columns", {"recall", "density", "entropy"}},
               {"sites", sites}});
  save_safetensors(path, tensors, {{kMetadataKey, meta.dump()}});
}

namespace {

Trace parse_trace(SafetensorsFile file, const std::string& name) {
  const MetadataReader r(name);
  const std::string prefix = r.prefix();
  const auto meta_it = file.metadata.find(kMetadataKey);
  SPARSESCOPE_CHECK(meta_it != file.metadata.end(), prefix,
                    "not a sparsescope trace (no \"sparsescope\" entry in the safetensors metadata)");
  const json meta = json::parse(meta_it->second, nullptr, /*allow_exceptions=*/false);
  SPARSESCOPE_CHECK(!meta.is_discarded() && meta.is_object(), prefix,
                    "the \"sparsescope\" metadata is not a JSON object");
  const int64_t version = r.integer(meta, "format_version", "", 0, INT64_MAX);
  SPARSESCOPE_CHECK(version == kFormatVersion, prefix, "format_version ", version,
                    " is not supported (this build reads ", kFormatVersion, ")");

  Trace trace;
  trace.info.model = r.text(meta, "model", "");
  trace.info.method = r.text(meta, "method", "");
  trace.info.input = r.text(meta, "input", "");
  trace.info.frame = r.integer(meta, "frame", "", -1, INT64_MAX);
  trace.info.producer = r.text(meta, "producer", "");
  trace.info.layout = read_layout(r, meta);
  if (meta.contains("topk")) {
    for (const json& j : r.array(meta, "topk", "")) {
      ClassScore c;
      c.index = r.integer(j, "class", "topk[]", 0, INT32_MAX);
      // A model that overflowed (NaN logits) writes its scores as null.
      const bool nan = j.is_object() && j.contains("score") && j["score"].is_null();
      c.score = nan ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(r.real(j, "score", "topk[]", 0.0, 1.0));
      if (j.contains("label")) c.label = r.text(j, "label", "topk[]");
      trace.info.topk.push_back(std::move(c));
    }
  }

  std::map<std::string, at::Tensor> tensors;
  for (auto& [tensor_name, tensor] : file.tensors) tensors.emplace(tensor_name, std::move(tensor));
  std::set<std::string> explained;
  if (tensors.count(kImageTensor)) {
    const at::Tensor& image = tensors.at(kImageTensor);
    SPARSESCOPE_CHECK(image.scalar_type() == at::kByte && image.dim() == 3 && image.size(0) >= 1 &&
                          image.size(1) >= 1 && image.size(2) == 3,
                      prefix, "tensor '", kImageTensor, "' must be uint8 [H, W, 3], got ", image.sizes(), " of ",
                      image.scalar_type());
    trace.image = image.clone();  // own the pixels rather than the file mapping
    explained.insert(kImageTensor);
  }

  for (const json& j : r.array(meta, "sites", "")) {
    SiteTrace s;
    s.name = r.text(j, "name", "sites[]");
    const std::string where = "sites[" + s.name + "]";
    SPARSESCOPE_CHECK(!s.name.empty(), prefix, "a site has an empty name");
    SPARSESCOPE_CHECK(!explained.count(s.name + "/probs"), prefix, "site '", s.name, "' is listed twice");
    s.pattern = r.text(j, "pattern", where);
    s.queries = r.integer(j, "queries", where, 1, kMaxTokens);
    s.keys = r.integer(j, "keys", where, 1, kMaxTokens);
    s.pool = r.integer(j, "pool", where, 1, std::max(s.queries, s.keys));
    const int64_t heads = r.integer(j, "heads", where, 1, kMaxHeads);
    const int64_t mask_heads = r.integer(j, "mask_heads", where, 1, heads);
    SPARSESCOPE_CHECK(mask_heads == 1 || mask_heads == heads, prefix, "metadata key '", where, ".mask_heads' is ",
                      mask_heads, ", expected 1 or ", heads);
    const int64_t rows = r.integer(j, "rows", where, 0, s.queries);

    std::ostringstream why;
    why << heads << " heads, " << s.queries << " x " << s.keys << " at pool " << s.pool << " in the metadata";
    const std::string site_why = why.str();
    const auto floats = {at::kHalf, at::kFloat, at::kBFloat16};
    s.probs =
        expect_tensor(tensors, s.name + "/probs", floats, pooled_shape(heads, s), site_why, prefix).to(at::kFloat);
    s.mask = expect_tensor(tensors, s.name + "/mask", {at::kByte}, pooled_shape(mask_heads, s), site_why, prefix)
                 .to(at::kFloat)
                 .div_(255);
    s.stats = expect_tensor(tensors, s.name + "/stats", floats, {heads, kStatColumns}, site_why, prefix).to(at::kFloat);
    s.rows = expect_tensor(tensors, s.name + "/rows", floats, {heads, rows, s.keys}, site_why, prefix).to(at::kFloat);
    s.row_queries = expect_tensor(tensors, s.name + "/row_queries", {at::kLong}, {rows}, site_why, prefix).clone();
    if (rows > 0) {
      const bool in_range = s.row_queries.ge(0).logical_and(s.row_queries.lt(s.queries)).all().item<bool>();
      SPARSESCOPE_CHECK(in_range, prefix, "tensor '", s.name, "/row_queries' holds queries outside [0, ", s.queries,
                        ")");
    }
    for (const char* field : {"/probs", "/mask", "/stats", "/rows", "/row_queries"}) explained.insert(s.name + field);
    trace.sites.push_back(std::move(s));
  }

  std::string unexplained;
  for (const auto& [tensor_name, tensor] : tensors) {
    if (!explained.count(tensor_name)) unexplained += (unexplained.empty() ? "" : ", ") + tensor_name;
  }
  SPARSESCOPE_CHECK(unexplained.empty(), prefix, "tensors not described by the metadata: ", unexplained);
  return trace;
}

}  // namespace

Trace load_trace(const std::string& path) { return parse_trace(load_safetensors(path), path); }

Trace load_trace(const void* data, std::size_t size, const std::string& name) {
  return parse_trace(load_safetensors(data, size, name), name);
}

}  // namespace sparsescope::vision
