#pragma once
// One recorded forward pass (DESIGN.md section 4): per attention site and head, the attention
// probabilities (full, or block-pooled beyond the recorder's budget), the pattern's mask, full rows
// for selected queries and per-head statistics; for a site recorded in parts (probe_set.h), the
// effective probabilities, the union of the parts' masks and each part's map, mask and gate; for a
// map handed over without attend(), its values. Stored as safetensors (Note [trace file] in
// src/io/trace_metadata.cpp): tensors `<site>/probs`, `/mask`, `/stats`, `/rows`, `/row_queries`,
// `<site>/parts/<part>/probs`, `/mask`, `/gate`, `input/image` and `input/coords`, with the JSON
// of TraceInfo and the site list under the metadata key "sparsescope" (trace_metadata.h).
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sparsescope/vision/trace_metadata.h"

namespace sparsescope::vision {

/// Columns of SiteTrace::stats.
enum StatColumn : int64_t { kRecall = 0, kDensity = 1, kEntropy = 2, kStatColumns = 3 };

/// One part of a site recorded in parts (SitePart), at the site's queries and keys and pooled as
/// the site's maps; rows the part does not cover are 0.
struct PartTrace {
  std::string name;
  std::string merge;  // "sum" or "lse" (SitePart::Merge)
  at::Tensor probs;   // float32 [H, N', M']: the part's own softmax
  at::Tensor mask;    // float32 [H or 1, N', M']: its kept fraction
  at::Tensor gate;    // float32 [H or 1, N']: the weight of its output in the site's, per query
                      // (sum: SitePart::gate or 1; lse: exp(lse_part - lse_site)), pooled over queries
};

struct SiteTrace {
  std::string name;     // "blocks.3.attn"
  std::string kind = kAttentionMap;  // trace_metadata.h: what probs holds
  std::string pattern;  // kind_name() of the pattern attend() ran; "+"-joined over parts; empty for maps
  int64_t queries = 0;  // N
  int64_t keys = 0;     // M
  int64_t pool = 1;     // 1: full maps; else cells of pool x pool (queries x keys), averaged
  at::Tensor probs;     // float32 [H, ceil(N/pool), ceil(M/pool)] (stored as float16)
  at::Tensor mask;      // float32 [H or 1, ceil(N/pool), ceil(M/pool)]: kept fraction, 0/1 at pool 1
                        // (stored as uint8, 255 = all kept; one plane when all heads share it)
  at::Tensor stats;     // float32 [H, kStatColumns]; recall is NaN when not compared with dense
  at::Tensor rows;      // float32 [H, R, M]: full probability rows of row_queries (R may be 0)
  at::Tensor row_queries;  // int64 [R]
  std::vector<PartTrace> parts;  // empty unless recorded in parts; in observation order
  std::string from;  // cross layout: the sequence of the queries, kCrossText or kCrossRegion
  std::string subset;  // "" (queries and keys are the layout's tokens) or kVisibleTokens (prefix + layout.visible)

  int64_t heads() const { return probs.defined() ? probs.size(0) : 0; }
};

struct Trace {
  TraceInfo info;
  at::Tensor image;   // uint8 [H, W, 3]: the network's input after preprocessing (for overlays)
  at::Tensor coords;  // int32 [points, 3]: voxel coordinates of the tokens when info.layout.kind is "points"
  std::vector<SiteTrace> sites;  // in forward order

  /// The site named `name`; throws sparsescope::Error listing the trace's sites.
  const SiteTrace& site(const std::string& name) const;
};

/// "sparsescope <version> / LibTorch <version>": TraceInfo::producer of traces recorded by this build.
std::string trace_producer();

/// Writes `trace` through a temporary file renamed into place.
void save_trace(const Trace& trace, const std::string& path);

/// Reads a trace written by save_trace (or any tool following the format above). Names, dtypes,
/// shapes and metadata are validated; errors name the file and the tensor or key.
Trace load_trace(const std::string& path);

/// The same from the bytes of a trace file in memory; `name` names the source in errors.
Trace load_trace(const void* data, std::size_t size, const std::string& name);

}  // namespace sparsescope::vision
