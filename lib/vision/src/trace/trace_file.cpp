// Trace files: the tensors of a Trace, with the metadata JSON of trace_metadata.h (see Note [trace
// file] in src/io/trace_metadata.cpp). The reader checks every tensor against the dtype and the
// shape that the metadata implies, and leaves no tensor unexplained.
#include <ATen/ATen.h>

#include <map>
#include <set>
#include <sstream>

#include "sparsescope/kernels/error.h"
#include "sparsescope/kernels/version.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::vision {

namespace {

constexpr const char* kMetadataKey = "sparsescope";
constexpr const char* kImageTensor = "input/image";
constexpr const char* kCoordsTensor = "input/coords";

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::vector<int64_t> pooled_shape(int64_t planes, const SiteTrace& s) {
  return {planes, ceil_div(s.queries, s.pool), ceil_div(s.keys, s.pool)};
}

std::string part_tensor(const SiteTrace& s, const std::string& part, const char* field) {
  return s.name + "/parts/" + part + "/" + field;
}

// The kept fraction in 1/255 steps: exact for the 0/1 masks of full maps, and one byte per cell.
at::Tensor mask_bytes(const at::Tensor& mask) { return (mask.to(at::kFloat) * 255).round().clamp(0, 255).to(at::kByte); }

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
  SPARSESCOPE_CHECK(s.kind == kAttentionMap || s.kind == kChannelMap || s.kind == kKernelMap, at, "unknown kind '",
                    s.kind, "'");
  SPARSESCOPE_CHECK(s.parts.empty() || s.kind == kAttentionMap, at, "only attention sites have parts");
  std::set<std::string> names;
  for (const PartTrace& p : s.parts) {
    const std::string part = at + "part '" + p.name + "': ";
    SPARSESCOPE_CHECK(valid_part_name(p.name), part, "a part's name must be letters, digits, '_', '.' or '-'");
    SPARSESCOPE_CHECK(names.insert(p.name).second, at, "part '", p.name, "' twice");
    SPARSESCOPE_CHECK(p.merge == "sum" || p.merge == "lse", part, "merge must be 'sum' or 'lse', got '", p.merge, "'");
    SPARSESCOPE_CHECK(p.probs.defined() && p.probs.sizes().vec() == pooled_shape(heads, s), part, "`probs` must be ",
                      at::IntArrayRef(pooled_shape(heads, s)));
    SPARSESCOPE_CHECK(p.mask.defined() && (p.mask.sizes().vec() == pooled_shape(heads, s) ||
                                           p.mask.sizes().vec() == pooled_shape(1, s)),
                      part, "`mask` must be ", at::IntArrayRef(pooled_shape(heads, s)), " or one plane");
    const int64_t cells = ceil_div(s.queries, s.pool);
    SPARSESCOPE_CHECK(p.gate.defined() && p.gate.dim() == 2 && (p.gate.size(0) == heads || p.gate.size(0) == 1) &&
                          p.gate.size(1) == cells,
                      part, "`gate` must be [", heads, " or 1, ", cells, "]");
  }
  const int64_t rows = s.row_queries.defined() ? s.row_queries.numel() : 0;
  SPARSESCOPE_CHECK(!s.row_queries.defined() || s.row_queries.dim() == 1, at, "`row_queries` must be 1-D");
  if (rows > 0) {
    SPARSESCOPE_CHECK(s.rows.defined() && s.rows.sizes() == at::IntArrayRef({heads, rows, s.keys}), at,
                      "`rows` has shape ", s.rows.defined() ? s.rows.sizes() : at::IntArrayRef{}, ", expected [", heads,
                      ", ", rows, ", ", s.keys, "]");
  }
}

}  // namespace

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
  if (trace.info.layout.kind == kPointsLayout) {
    SPARSESCOPE_CHECK(trace.coords.defined() && trace.coords.dim() == 2 && trace.coords.size(1) == 3 &&
                          trace.coords.size(0) == trace.info.layout.points,
                      prefix, "a points layout of ", trace.info.layout.points, " tokens needs `coords` [",
                      trace.info.layout.points, ", 3]");
    tensors.emplace_back(kCoordsTensor, trace.coords.to(at::kInt));
  } else {
    SPARSESCOPE_CHECK(!trace.coords.defined(), prefix, "`coords` belong to a points layout, the layout is '",
                      trace.info.layout.kind, "'");
  }
  TraceMetadata meta{trace.info, {}, version(), torch_version()};
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
    // Maps handed over (channel, kernel) are not probabilities: float32 keeps their range.
    tensors.emplace_back(s.name + "/probs", s.probs.to(s.kind == kAttentionMap ? at::kHalf : at::kFloat));
    tensors.emplace_back(s.name + "/mask", mask_bytes(s.mask));
    tensors.emplace_back(s.name + "/stats", s.stats.to(at::kFloat));
    tensors.emplace_back(s.name + "/rows", rows);
    tensors.emplace_back(s.name + "/row_queries", row_queries);
    SiteShape shape{s.name, s.pattern, s.queries, s.keys, s.pool, s.heads(), s.mask.size(0), row_queries.numel(),
                    s.kind, {},     s.from,    s.subset};
    if (trace.info.layout.kind == kCrossLayout) check_cross_site(trace.info.layout, shape, prefix);
    check_site_subset(trace.info.layout, shape, prefix);
    for (const PartTrace& p : s.parts) {
      tensors.emplace_back(part_tensor(s, p.name, "probs"), p.probs.to(at::kHalf));
      tensors.emplace_back(part_tensor(s, p.name, "mask"), mask_bytes(p.mask));
      tensors.emplace_back(part_tensor(s, p.name, "gate"), p.gate.to(at::kFloat));
      shape.parts.push_back({p.name, p.merge, p.mask.size(0), p.gate.size(0)});
    }
    meta.sites.push_back(std::move(shape));
  }
  save_safetensors(path, tensors, {{kMetadataKey, trace_metadata_json(meta)}});
}

namespace {

// Values a viewer would draw as nothing: NaN or infinite entries, probabilities outside [0, 1]
// (beyond float16 rounding).
void check_finite(const at::Tensor& t, const std::string& name, const std::string& prefix) {
  const int64_t bad = t.numel() - at::isfinite(t).sum().item<int64_t>();
  SPARSESCOPE_CHECK(bad == 0, prefix, "tensor '", name, "' holds ", bad, " NaN or infinite values");
}

void check_probabilities(const at::Tensor& t, const std::string& name, const std::string& prefix) {
  check_finite(t, name, prefix);
  if (t.numel() == 0) return;
  const double low = t.min().item<double>(), high = t.max().item<double>();
  SPARSESCOPE_CHECK(low >= 0 && high <= 1 + 1e-3, prefix, "tensor '", name, "' holds probabilities outside [0, 1] (",
                    low, " to ", high, ")");
}

Trace parse_trace(SafetensorsFile file, const std::string& name) {
  const std::string prefix = "trace '" + name + "': ";
  const auto meta_it = file.metadata.find(kMetadataKey);
  SPARSESCOPE_CHECK(meta_it != file.metadata.end(), prefix,
                    "not a sparsescope trace (no \"sparsescope\" entry in the safetensors metadata)");
  const TraceMetadata meta = parse_trace_metadata(meta_it->second, name);
  Trace trace;
  trace.info = meta.info;

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

  if (meta.info.layout.kind == kPointsLayout) {
    trace.coords = expect_tensor(tensors, kCoordsTensor, {at::kInt}, {meta.info.layout.points, 3},
                                 "layout.points in the metadata", prefix)
                       .clone();
    explained.insert(kCoordsTensor);
  }

  for (const SiteShape& shape : meta.sites) {
    SiteTrace s;
    s.name = shape.name;
    s.kind = shape.kind;
    s.from = shape.from;
    s.subset = shape.subset;
    s.pattern = shape.pattern;
    s.queries = shape.queries;
    s.keys = shape.keys;
    s.pool = shape.pool;
    const int64_t heads = shape.heads, mask_heads = shape.mask_heads, rows = shape.rows;

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
    if (s.kind == kAttentionMap) {
      check_probabilities(s.probs, s.name + "/probs", prefix);
      check_probabilities(s.rows, s.name + "/rows", prefix);
    } else {
      check_finite(s.probs, s.name + "/probs", prefix);
      check_finite(s.rows, s.name + "/rows", prefix);
    }
    for (const SiteShape::Part& part : shape.parts) {
      PartTrace p;
      p.name = part.name;
      p.merge = part.merge;
      p.probs = expect_tensor(tensors, part_tensor(s, p.name, "probs"), floats, pooled_shape(heads, s), site_why, prefix)
                    .to(at::kFloat);
      p.mask = expect_tensor(tensors, part_tensor(s, p.name, "mask"), {at::kByte}, pooled_shape(part.mask_heads, s),
                             site_why, prefix)
                   .to(at::kFloat)
                   .div_(255);
      p.gate = expect_tensor(tensors, part_tensor(s, p.name, "gate"), floats,
                             {part.gate_heads, ceil_div(s.queries, s.pool)}, site_why, prefix)
                   .to(at::kFloat);
      for (const char* field : {"probs", "mask", "gate"}) explained.insert(part_tensor(s, p.name, field));
      check_probabilities(p.probs, part_tensor(s, p.name, "probs"), prefix);
      check_finite(p.gate, part_tensor(s, p.name, "gate"), prefix);
      s.parts.push_back(std::move(p));
    }
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
