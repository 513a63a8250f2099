#include "safetensors_format.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision::io {

namespace {

using json = nlohmann::json;

constexpr std::size_t kLengthBytes = 8;
constexpr std::string_view kMetadataKey = "__metadata__";

struct DtypeRow {
  Dtype dtype;
  std::string_view name;
  int bits;
};

constexpr std::array<DtypeRow, 22> kDtypes = {{
    {Dtype::BOOL, "BOOL", 8},
    {Dtype::U8, "U8", 8},
    {Dtype::I8, "I8", 8},
    {Dtype::F8_E5M2, "F8_E5M2", 8},
    {Dtype::F8_E4M3, "F8_E4M3", 8},
    {Dtype::F8_E8M0, "F8_E8M0", 8},
    {Dtype::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {Dtype::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {Dtype::I16, "I16", 16},
    {Dtype::U16, "U16", 16},
    {Dtype::F16, "F16", 16},
    {Dtype::BF16, "BF16", 16},
    {Dtype::I32, "I32", 32},
    {Dtype::U32, "U32", 32},
    {Dtype::F32, "F32", 32},
    {Dtype::C64, "C64", 64},
    {Dtype::F64, "F64", 64},
    {Dtype::I64, "I64", 64},
    {Dtype::U64, "U64", 64},
    {Dtype::F4, "F4", 4},
    {Dtype::F6_E2M3, "F6_E2M3", 6},
    {Dtype::F6_E3M2, "F6_E3M2", 6},
}};

const DtypeRow& row(Dtype dtype) {
  for (const auto& r : kDtypes) {
    if (r.dtype == dtype) return r;
  }
  SPARSESCOPE_FAIL("safetensors: invalid Dtype value ", static_cast<int>(dtype));
}

// Offending JSON is quoted in messages, but a hostile header can be huge.
std::string excerpt(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  constexpr std::size_t kMax = 60;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

// A header is at most: object of tensors -> object per tensor -> shape/offset arrays. Deeper
// containers are refused while parsing, so a hostile header cannot build a deep tree.
constexpr int kMaxContainerDepth = 2;

// nlohmann keeps the last of duplicate keys silently and its std::map loses the header order;
// this callback sees every key as it is parsed, so it catches duplicates and records the order.
class KeyTracker {
 public:
  explicit KeyTracker(std::string_view file) : file_(file) {}

  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        check_depth(depth);
        open_.emplace_back();
        break;
      case json::parse_event_t::array_start:
        check_depth(depth);
        break;
      case json::parse_event_t::object_end:
        if (!open_.empty()) open_.pop_back();
        break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (depth == 1) {
          SPARSESCOPE_CHECK(open_.back().insert(key).second, "safetensors file '", file_, "': duplicate tensor name '",
                            key, "'");
          top_ = key;
          order_.push_back(key);
        } else {
          SPARSESCOPE_CHECK(open_.back().insert(key).second, "safetensors file '", file_, "': ", owner(),
                            ": duplicate key '", key, "'");
        }
        break;
      }
      default:
        break;
    }
    return true;
  }

  const std::vector<std::string>& order() const { return order_; }

 private:
  std::string owner() const { return top_ == kMetadataKey ? std::string(kMetadataKey) : "tensor '" + top_ + "'"; }

  void check_depth(int depth) const {
    SPARSESCOPE_CHECK(depth <= kMaxContainerDepth, "safetensors file '", file_, "': ", owner(),
                      ": header nests containers deeper than a safetensors header has");
  }

  std::string_view file_;
  std::vector<std::set<std::string>> open_;
  std::vector<std::string> order_;
  std::string top_;
};

// A JSON number that is a non-negative integer; the format's sizes and offsets are usize.
std::optional<std::uint64_t> as_unsigned(const json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(value.get<std::int64_t>());
  return std::nullopt;
}

class HeaderReader {
 public:
  HeaderReader(std::string_view file, std::uint64_t data_size) : file_(file), data_size_(data_size) {}

  std::map<std::string, std::string> metadata(const json& value) const {
    std::map<std::string, std::string> out;
    if (value.is_null()) return out;
    SPARSESCOPE_CHECK(value.is_object(), prefix(), kMetadataKey, " must map strings to strings, got ", excerpt(value));
    for (const auto& [key, item] : value.items()) {
      SPARSESCOPE_CHECK(item.is_string(), prefix(), kMetadataKey, " key '", key, "': value must be a string, got ",
                        excerpt(item));
      out.emplace(key, item.get<std::string>());
    }
    return out;
  }

  TensorInfo tensor(const std::string& name, const json& entry) const {
    const std::string at = prefix() + "tensor '" + name + "': ";
    SPARSESCOPE_CHECK(entry.is_object(), at, "entry must be an object with dtype, shape and data_offsets, got ",
                      excerpt(entry));
    TensorInfo info;
    info.name = name;

    const auto dtype = entry.find("dtype");
    SPARSESCOPE_CHECK(dtype != entry.end(), at, "missing \"dtype\"");
    SPARSESCOPE_CHECK(dtype->is_string(), at, "dtype must be a string, got ", excerpt(*dtype));
    const auto parsed_dtype = dtype_from_name(dtype->get_ref<const std::string&>());
    SPARSESCOPE_CHECK(parsed_dtype.has_value(), at, "unknown dtype ", excerpt(*dtype));
    info.dtype = *parsed_dtype;

    const auto shape = entry.find("shape");
    SPARSESCOPE_CHECK(shape != entry.end(), at, "missing \"shape\"");
    SPARSESCOPE_CHECK(shape->is_array(), at, "shape must be a list of non-negative integers, got ", excerpt(*shape));
    for (const auto& dim : *shape) {
      const auto value = as_unsigned(dim);
      SPARSESCOPE_CHECK(value && *value <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), at,
                        "shape must be a list of non-negative integers, got ", excerpt(*shape));
      info.shape.push_back(static_cast<std::int64_t>(*value));
    }

    const auto offsets = entry.find("data_offsets");
    SPARSESCOPE_CHECK(offsets != entry.end(), at, "missing \"data_offsets\"");
    const bool pair = offsets->is_array() && offsets->size() == 2;
    const auto begin = pair ? as_unsigned((*offsets)[0]) : std::nullopt;
    const auto end = pair ? as_unsigned((*offsets)[1]) : std::nullopt;
    SPARSESCOPE_CHECK(begin && end, at, "data_offsets must be [begin, end] of non-negative integers, got ",
                      excerpt(*offsets));
    info.begin = *begin;
    info.end = *end;
    const std::string range = "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) + "]";
    SPARSESCOPE_CHECK(info.begin <= info.end, at, range, ": begin is after end");
    SPARSESCOPE_CHECK(info.end <= data_size_, at, range, " reach beyond the ", data_size_, "-byte data region");

    const auto bytes = tensor_bytes(info.dtype, info.shape);
    SPARSESCOPE_CHECK(bytes.has_value(), at, "dtype ", dtype_name(info.dtype), " and shape ", shape_string(info.shape),
                      " do not make a whole number of bytes (or overflow)");
    SPARSESCOPE_CHECK(*bytes == info.end - info.begin, at, "dtype ", dtype_name(info.dtype), " and shape ",
                      shape_string(info.shape), " need ", *bytes, " bytes but ", range, " hold ",
                      info.end - info.begin);
    return info;
  }

  // Sorted by offsets, the tensors must tile [0, data_size) exactly.
  void check_tiling(const std::vector<TensorInfo>& tensors) const {
    std::vector<std::size_t> order(tensors.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return std::tie(tensors[a].begin, tensors[a].end) < std::tie(tensors[b].begin, tensors[b].end);
    });
    std::uint64_t covered = 0;
    const TensorInfo* previous = nullptr;
    for (const std::size_t i : order) {
      const TensorInfo& t = tensors[i];
      const std::string at = prefix() + "tensor '" + t.name + "': data_offsets [" + std::to_string(t.begin) + ", " +
                             std::to_string(t.end) + "]";
      SPARSESCOPE_CHECK(t.begin >= covered, at, " overlap tensor '", previous ? previous->name : std::string(),
                        "' (data_offsets [", previous ? previous->begin : 0, ", ", previous ? previous->end : 0, "])");
      SPARSESCOPE_CHECK(t.begin == covered, at, " leave a gap: bytes [", covered, ", ", t.begin,
                        ") of the data region belong to no tensor");
      covered = t.end;
      previous = &t;
    }
    SPARSESCOPE_CHECK(covered == data_size_, prefix(), "the data region has ", data_size_,
                      " bytes but the tensors cover only the first ", covered, " (trailing bytes belong to no tensor)");
  }

 private:
  std::string prefix() const { return "safetensors file '" + std::string(file_) + "': "; }

  std::string_view file_;
  std::uint64_t data_size_;
};

}  // namespace

std::string_view dtype_name(Dtype dtype) { return row(dtype).name; }

std::optional<Dtype> dtype_from_name(std::string_view name) {
  for (const auto& r : kDtypes) {
    if (r.name == name) return r.dtype;
  }
  return std::nullopt;
}

int dtype_bits(Dtype dtype) { return row(dtype).bits; }

std::optional<std::uint64_t> tensor_bytes(Dtype dtype, const std::vector<std::int64_t>& shape) {
  std::uint64_t bits = static_cast<std::uint64_t>(dtype_bits(dtype));
  for (const std::int64_t dim : shape) {
    if (dim < 0) return std::nullopt;
    if (__builtin_mul_overflow(bits, static_cast<std::uint64_t>(dim), &bits)) return std::nullopt;
  }
  if (bits % 8 != 0) return std::nullopt;
  return bits / 8;
}

Header parse_header(const void* bytes, std::size_t size, std::string_view file) {
  const auto* data = static_cast<const unsigned char*>(bytes);
  SPARSESCOPE_CHECK(size >= kLengthBytes, "safetensors file '", file, "': file has ", size,
                    " bytes, fewer than the 8-byte header length");
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < kLengthBytes; ++i) n |= static_cast<std::uint64_t>(data[i]) << (8 * i);
  SPARSESCOPE_CHECK(n <= kMaxHeaderBytes, "safetensors file '", file, "': header length ", n, " exceeds the limit of ",
                    kMaxHeaderBytes, " bytes");
  SPARSESCOPE_CHECK(n <= size - kLengthBytes, "safetensors file '", file, "': header length ", n,
                    " reaches beyond the end of the ", size, "-byte file");
  SPARSESCOPE_CHECK(n > 0 && data[kLengthBytes] == '{', "safetensors file '", file,
                    "': header is not a JSON object (it must start with '{')");

  const char* text = reinterpret_cast<const char*>(data + kLengthBytes);
  // nlohmann's lexer takes a NUL byte for the end of input and would accept "{}\0<anything>";
  // JSON has no raw NUL, so any is an error.
  const void* nul = std::memchr(text, 0, n);
  SPARSESCOPE_CHECK(nul == nullptr, "safetensors file '", file,
                    "': header is not valid JSON: NUL byte at header offset ", static_cast<const char*>(nul) - text);
  KeyTracker tracker(file);
  json root;
  try {
    root = json::parse(text, text + n, std::ref(tracker));
  } catch (const json::exception& e) {
    SPARSESCOPE_FAIL("safetensors file '", file, "': header is not valid JSON: ", e.what());
  }
  SPARSESCOPE_CHECK(root.is_object(), "safetensors file '", file, "': header is not a JSON object");

  Header header;
  header.data_start = kLengthBytes + n;
  const HeaderReader reader(file, size - header.data_start);
  for (const std::string& name : tracker.order()) {
    const json& value = root.at(name);
    if (name == kMetadataKey) {
      header.metadata = reader.metadata(value);
    } else {
      header.tensors.push_back(reader.tensor(name, value));
    }
  }
  reader.check_tiling(header.tensors);
  return header;
}

std::uint64_t assign_offsets(std::vector<TensorInfo>& tensors, std::string_view file) {
  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return dtype_bits(tensors[a].dtype) > dtype_bits(tensors[b].dtype);
  });
  std::uint64_t offset = 0;
  for (const std::size_t i : order) {
    TensorInfo& t = tensors[i];
    const auto bytes = tensor_bytes(t.dtype, t.shape);
    SPARSESCOPE_CHECK(bytes.has_value(), "safetensors file '", file, "': tensor '", t.name, "': dtype ",
                      dtype_name(t.dtype), " and shape ", shape_string(t.shape),
                      " do not make a whole number of bytes (or overflow)");
    t.begin = offset;
    SPARSESCOPE_CHECK(!__builtin_add_overflow(offset, *bytes, &offset), "safetensors file '", file, "': tensor '",
                      t.name, "': data region size overflows");
    t.end = offset;
  }
  return offset;
}

std::string serialize_header(const std::vector<TensorInfo>& tensors, const std::map<std::string, std::string>& metadata,
                             std::string_view file) {
  // Written by hand rather than through a JSON object so that the tensors keep the caller's order.
  const auto quoted = [&](const std::string& text, const std::string& what) {
    try {
      return json(text).dump();
    } catch (const json::exception&) {
      SPARSESCOPE_FAIL("safetensors file '", file, "': ", what, " is not valid UTF-8");
    }
  };
  std::string out = "{";
  if (!metadata.empty()) {
    out += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      out += first ? "" : ",";
      first = false;
      out += quoted(key, std::string(kMetadataKey) + " key '" + key + "'");
      out += ":";
      out += quoted(value, std::string(kMetadataKey) + " value of key '" + key + "'");
    }
    out += "}";
  }
  std::set<std::string_view> seen;
  for (const TensorInfo& t : tensors) {
    SPARSESCOPE_CHECK(t.name != kMetadataKey, "safetensors file '", file, "': tensor name '", t.name,
                      "' is reserved for the metadata");
    SPARSESCOPE_CHECK(seen.insert(t.name).second, "safetensors file '", file, "': duplicate tensor name '", t.name,
                      "'");
    out += out.size() > 1 ? "," : "";
    out += quoted(t.name, "tensor name '" + t.name + "'");
    out += ":{\"dtype\":\"";
    out += dtype_name(t.dtype);
    out += "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) out += (i ? "," : "") + std::to_string(t.shape[i]);
    out += "],\"data_offsets\":[" + std::to_string(t.begin) + "," + std::to_string(t.end) + "]}";
  }
  out += "}";
  out.append((kLengthBytes - out.size() % kLengthBytes) % kLengthBytes, ' ');

  std::string result(kLengthBytes, '\0');
  const std::uint64_t n = out.size();
  for (std::size_t i = 0; i < kLengthBytes; ++i) result[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return result + out;
}

}  // namespace sparsescope::vision::io
