#pragma once
// The JSON metadata of a trace file (Note [trace file] in src/io/trace_metadata.cpp): what was
// recorded (TraceInfo) and, per attention site, the shapes its tensors must have. LibTorch-free,
// so that the parser of this untrusted input is fuzzed in the sanitizer build.
#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace sparsescope::vision {

struct ClassScore {
  int64_t index = 0;  ///< class index
  float score = 0;    ///< softmax probability
  std::string label;  ///< class name; empty when the model names no classes
};

/// {"class", "score"} and "label" when named: the entries of predictions.jsonl and of traces.
void to_json(nlohmann::json& j, const ClassScore& c);

/// TokenLayout::kind: tokens on a dense grid, at sparse 3D coordinates (Trace::coords), or two
/// sequences that attend across each other: text tokens and image regions (cross-modal attention).
inline constexpr const char* kGridLayout = "grid";
inline constexpr const char* kPointsLayout = "points";
inline constexpr const char* kCrossLayout = "cross";
/// SiteShape::subset of a site over the prefix and the layout's visible patches only (empty: all tokens).
inline constexpr const char* kVisibleTokens = "visible";

/// The sequences of a cross layout, as a site's `from` names its queries' (and segments' kinds).
inline constexpr const char* kCrossText = "text";
inline constexpr const char* kCrossRegion = "region";

/// Where the tokens of a sequence come from: `prefix` tokens (class, distillation) first, then the
/// patch grid [T, H, W] in row-major order (frames x rows x columns; T = 1 for images) or `points`
/// tokens at sparse voxel coordinates; segments name ranges of the sequence. A cross layout has two
/// sequences, `words` then `regions` (tokens() counts both); each of its sites attends from one to
/// the other, as its `from` says.
struct TokenLayout {
  struct Segment {
    std::string kind;  // "prefix", "image", "frame", "text"
    int64_t start = 0;
    int64_t end = 0;  // one past the last token
  };
  int64_t prefix = 0;
  std::vector<int64_t> grid;  // [T, H, W] (grid layout)
  std::vector<Segment> segments;
  std::string kind = kGridLayout;
  int64_t points = 0;  // points layout: tokens after the prefix
  /// Grid layout: the patches (row-major indices into the grid) that sites over the visible tokens
  /// (SiteShape::subset kVisibleTokens, MAE's encoder) see after the prefix, in their order.
  std::vector<int64_t> visible{};
  std::vector<std::string> words{};            // cross layout: the text's tokens as text
  std::vector<std::array<float, 4>> regions{};  // cross layout: boxes x1, y1, x2, y2 in Trace::image pixels

  int64_t tokens() const;  // prefix + T * H * W, prefix + points, or words + regions
};

/// SiteShape::kind, what a site's maps hold: probabilities over keys (attend()), channel x channel
/// weights, or per-pixel kernel weights (rows: the layout's pixels; columns: the kernel's taps).
inline constexpr const char* kAttentionMap = "attention";
inline constexpr const char* kChannelMap = "channel";
inline constexpr const char* kKernelMap = "kernel";

struct TraceInfo {
  std::string model;   // "vit_small_patch16_224"
  std::string method;  // "dense", "sparsifiner", ...
  std::string input;   // the input file as given
  int64_t frame = -1;  // video frame index, -1 for still images
  TokenLayout layout;
  std::string producer;  // "sparsescope 0.1.0 / LibTorch 2.11.0"
  std::vector<ClassScore> topk;  // the classifier's most probable classes, best first; empty if unknown
};

/// An attention site as the metadata lists it: what its tensors `<name>/probs`, `/mask`, `/stats`,
/// `/rows` and `/row_queries` hold.
struct SiteShape {
  /// A part of a site recorded in parts: `<site>/parts/<name>/probs`, `/mask`, `/gate`.
  struct Part {
    std::string name;
    std::string merge;       // "sum" or "lse"
    int64_t mask_heads = 0;  // heads or 1
    int64_t gate_heads = 0;  // heads or 1
  };
  std::string name;     // "blocks.3.attn"
  std::string pattern;  // kind_name() of the pattern attend() ran ("+"-joined over parts)
  int64_t queries = 0;  // N
  int64_t keys = 0;     // M
  int64_t pool = 1;     // 1: full maps; else cells of pool x pool, averaged
  int64_t heads = 0;
  int64_t mask_heads = 0;  // heads or 1 (one plane shared by the heads)
  int64_t rows = 0;        // full probability rows kept for selected queries
  std::string kind = kAttentionMap;
  std::vector<Part> parts{};
  std::string from{};  // cross layout: kCrossText (queries are the words, keys the regions) or kCrossRegion
  std::string subset{};  // "" (the layout's tokens) or kVisibleTokens (queries and keys: prefix + visible)
};

/// Throws sparsescope::Error (starting with `prefix`) unless `site` fits the cross layout `layout`:
/// `from` names a sequence, whose size is its queries, and its keys are the other's.
void check_cross_site(const TokenLayout& layout, const SiteShape& site, const std::string& prefix);
/// Throws likewise unless `site`'s subset is empty, or kVisibleTokens with queries and keys of
/// the layout's prefix and visible patches.
void check_site_subset(const TokenLayout& layout, const SiteShape& site, const std::string& prefix);

/// Whether `name` can name a part (one component of its tensors' names): letters, digits, "_.-".
bool valid_part_name(const std::string& name);

struct TraceMetadata {
  TraceInfo info;
  std::vector<SiteShape> sites;  // in forward order
  std::string sparsescope_version, libtorch_version;  // of the writer
};

/// TraceInfo as a JSON object: model, method, input, frame, producer, topk and layout {prefix, grid,
/// segments}. The one writer of these keys, for the trace file's metadata and `trace info --json`.
std::string trace_info_json(const TraceInfo& info);

/// The metadata JSON of a trace file (format_version 2).
std::string trace_metadata_json(const TraceMetadata& metadata);

/// Parses and range-checks the metadata JSON of a trace file: every number that later sizes a
/// tensor is bounded, names are non-empty and unique. Throws sparsescope::Error naming `file` and
/// the key path, or the format version when it is neither 1 (read as 2 without parts, kinds or
/// point layouts) nor 2.
TraceMetadata parse_trace_metadata(const std::string& json, const std::string& file);

}  // namespace sparsescope::vision
