// The LibTorch-free safetensors header codec: every malformed-header rule of the format (see
// safetensors_format.h) as a data-driven table, the accepted edge cases, and the writer's layout.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "safetensors_format.h"
#include "sparsescope/kernels/error.h"

namespace io = sparsescope::vision::io;
namespace fs = std::filesystem;

namespace {

std::string length_prefix(std::uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

// A file whose header is `header` verbatim, followed by `data_bytes` bytes of data.
std::string file_with(const std::string& header, std::size_t data_bytes = 0) {
  return length_prefix(header.size()) + header + std::string(data_bytes, '\x5a');
}

io::Header parse(const std::string& bytes, const char* file = "ok.safetensors") {
  return io::parse_header(bytes.data(), bytes.size(), file);
}

std::string tensor(const std::string& name, const std::string& dtype, const std::string& shape,
                   const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

struct BadCase {
  std::string label;
  std::string bytes;
  std::vector<std::string> expected;  // substrings of the message besides the file name
};

std::ostream& operator<<(std::ostream& out, const BadCase& c) { return out << c.label; }

std::vector<BadCase> bad_cases() {
  const std::string w4 = tensor("w", "\"F32\"", "[1]", "[0,4]");
  return {
      {"empty_file", "", {"0 bytes, fewer than the 8-byte header length"}},
      {"shorter_than_length", "abc", {"3 bytes, fewer than the 8-byte header length"}},
      {"length_beyond_file",
       length_prefix(100) + "{}",
       {"header length 100 reaches beyond the end of the 10-byte file"}},
      {"length_beyond_limit", length_prefix(1ull << 40) + "{}", {"exceeds the limit of 100000000 bytes"}},
      {"length_max_u64", length_prefix(~0ull) + "{}", {"exceeds the limit"}},
      {"length_zero", length_prefix(0), {"header is not a JSON object"}},
      {"header_array", file_with("[1,2]"), {"header is not a JSON object (it must start with '{')"}},
      {"header_string", file_with("\"{}\""), {"it must start with '{'"}},
      {"header_leading_space", file_with(" {}"), {"it must start with '{'"}},
      {"header_truncated_json", file_with("{\"w\": {\"dtype\""), {"header is not valid JSON"}},
      {"header_trailing_garbage", file_with("{} x"), {"header is not valid JSON"}},
      {"header_nul_padding", file_with(std::string("{}\0\0", 4)), {"header is not valid JSON"}},
      {"header_bad_utf8", file_with("{\"w\xff\":1}"), {"header is not valid JSON"}},
      {"entry_not_object", file_with("{\"w\":[1,2]}"), {"tensor 'w'", "entry must be an object"}},
      {"entry_number", file_with("{\"w\":3}"), {"tensor 'w'", "entry must be an object"}},
      {"missing_dtype",
       file_with("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
       {"tensor 'w'", "missing \"dtype\""}},
      {"missing_shape",
       file_with("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4),
       {"tensor 'w'", "missing \"shape\""}},
      {"missing_offsets",
       file_with("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4),
       {"tensor 'w'", "missing \"data_offsets\""}},
      {"unknown_dtype",
       file_with("{" + tensor("w", "\"F128\"", "[1]", "[0,16]") + "}", 16),
       {"tensor 'w'", "unknown dtype \"F128\""}},
      {"dtype_lowercase",
       file_with("{" + tensor("w", "\"f32\"", "[1]", "[0,4]") + "}", 4),
       {"tensor 'w'", "unknown dtype \"f32\""}},
      {"dtype_not_string",
       file_with("{" + tensor("w", "4", "[1]", "[0,4]") + "}", 4),
       {"tensor 'w'", "dtype must be a string, got 4"}},
      {"shape_not_list",
       file_with("{" + tensor("w", "\"F32\"", "4", "[0,16]") + "}", 16),
       {"tensor 'w'", "shape must be a list of non-negative integers, got 4"}},
      {"shape_negative", file_with("{" + tensor("w", "\"F32\"", "[-1]", "[0,4]") + "}", 4), {"tensor 'w'", "got [-1]"}},
      {"shape_float", file_with("{" + tensor("w", "\"F32\"", "[2.0]", "[0,8]") + "}", 8), {"tensor 'w'", "got [2.0]"}},
      {"shape_string",
       file_with("{" + tensor("w", "\"F32\"", "[\"2\"]", "[0,8]") + "}", 8),
       {"tensor 'w'", "shape must be a list"}},
      {"shape_beyond_int64",
       file_with("{" + tensor("w", "\"F32\"", "[9223372036854775808,0]", "[0,0]") + "}"),
       {"tensor 'w'", "shape must be a list"}},
      {"shape_beyond_u64",
       file_with("{" + tensor("w", "\"F32\"", "[18446744073709551616]", "[0,0]") + "}"),
       {"tensor 'w'", "shape must be a list"}},
      {"shape_nested",
       file_with("{" + tensor("w", "\"F32\"", "[[2]]", "[0,8]") + "}", 8),
       {"tensor 'w'", "nests containers deeper"}},
      {"offsets_one",
       file_with("{" + tensor("w", "\"F32\"", "[1]", "[4]") + "}", 4),
       {"tensor 'w'", "data_offsets must be [begin, end] of non-negative integers, got [4]"}},
      {"offsets_three",
       file_with("{" + tensor("w", "\"F32\"", "[1]", "[0,4,8]") + "}", 8),
       {"tensor 'w'", "got [0,4,8]"}},
      {"offsets_object",
       file_with("{" + tensor("w", "\"F32\"", "[1]", "{\"a\":0}") + "}", 4),
       {"tensor 'w'", "data_offsets must be [begin, end]"}},
      {"offsets_negative",
       file_with("{" + tensor("w", "\"F32\"", "[1]", "[-4,0]") + "}", 4),
       {"tensor 'w'", "got [-4,0]"}},
      {"offsets_float",
       file_with("{" + tensor("w", "\"F32\"", "[1]", "[0,4.0]") + "}", 4),
       {"tensor 'w'", "got [0,4.0]"}},
      {"offsets_begin_after_end",
       file_with("{" + tensor("blocks.0.w", "\"F32\"", "[1]", "[8,4]") + "}", 8),
       {"tensor 'blocks.0.w'", "data_offsets [8, 4]: begin is after end"}},
      {"offsets_out_of_range",
       file_with("{" + tensor("w", "\"F32\"", "[2]", "[0,8]") + "}", 4),
       {"tensor 'w'", "data_offsets [0, 8] reach beyond the 4-byte data region"}},
      {"offsets_huge",
       file_with("{" + tensor("w", "\"F32\"", "[1]", "[18446744073709551611,18446744073709551615]") + "}", 4),
       {"tensor 'w'", "reach beyond the 4-byte data region"}},
      {"size_mismatch",
       file_with("{" + tensor("w", "\"F32\"", "[2,3]", "[0,20]") + "}", 20),
       {"tensor 'w'", "dtype F32 and shape [2, 3] need 24 bytes but data_offsets [0, 20] hold 20"}},
      {"size_overflow",
       file_with("{" + tensor("w", "\"F32\"", "[4294967296,4294967296,16]", "[0,4]") + "}", 4),
       {"tensor 'w'", "do not make a whole number of bytes (or overflow)"}},
      {"size_partial_byte",
       file_with("{" + tensor("w", "\"F4\"", "[3]", "[0,1]") + "}", 1),
       {"tensor 'w'", "dtype F4 and shape [3] do not make a whole number of bytes"}},
      {"overlap",
       file_with("{" + tensor("a", "\"F32\"", "[2]", "[0,8]") + "," + tensor("b", "\"F32\"", "[2]", "[4,12]") + "}",
                 12),
       {"tensor 'b': data_offsets [4, 12] overlap tensor 'a' (data_offsets [0, 8])"}},
      {"overlap_same_range",
       file_with("{" + tensor("a", "\"F32\"", "[1]", "[0,4]") + "," + tensor("b", "\"I32\"", "[1]", "[0,4]") + "}", 4),
       {"overlap tensor 'a'"}},
      {"empty_inside_other",
       file_with("{" + tensor("a", "\"F32\"", "[2]", "[0,8]") + "," + tensor("e", "\"F32\"", "[0]", "[4,4]") + "}", 8),
       {"tensor 'e': data_offsets [4, 4] overlap tensor 'a'"}},
      {"gap_between",
       file_with("{" + tensor("a", "\"F32\"", "[1]", "[0,4]") + "," + tensor("b", "\"F32\"", "[1]", "[8,12]") + "}",
                 12),
       {"tensor 'b': data_offsets [8, 12] leave a gap: bytes [4, 8)"}},
      {"gap_at_start",
       file_with("{" + tensor("a", "\"F32\"", "[1]", "[4,8]") + "}", 8),
       {"tensor 'a'", "leave a gap: bytes [0, 4)"}},
      {"trailing_bytes",
       file_with("{" + w4 + "}", 12),
       {"data region has 12 bytes but the tensors cover only the first 4"}},
      {"no_tensors_but_data", file_with("{}", 1), {"data region has 1 bytes but the tensors cover only the first 0"}},
      {"duplicate_tensor",
       file_with("{" + w4 + "," + tensor("w", "\"F32\"", "[1]", "[4,8]") + "}", 8),
       {"duplicate tensor name 'w'"}},
      {"duplicate_entry_key",
       file_with("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
       {"tensor 'w': duplicate key 'dtype'"}},
      {"duplicate_metadata",
       file_with("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}"),
       {"__metadata__: duplicate key 'k'"}},
      {"duplicate_metadata_block",
       file_with("{\"__metadata__\":{},\"__metadata__\":{}}"),
       {"duplicate tensor name '__metadata__'"}},
      {"metadata_string",
       file_with("{\"__metadata__\":\"free text\"}"),
       {"__metadata__ must map strings to strings, got \"free text\""}},
      {"metadata_value_number",
       file_with("{\"__metadata__\":{\"epoch\":3}}"),
       {"__metadata__ key 'epoch': value must be a string, got 3"}},
      {"metadata_value_object",
       file_with("{\"__metadata__\":{\"cfg\":{\"a\":\"b\"}}}"),
       {"__metadata__ key 'cfg': value must be a string"}},
      {"deep_nesting",
       file_with("{\"w\":" + std::string(10000, '[') + std::string(10000, ']') + "}"),
       {"tensor 'w'", "nests containers deeper"}},
  };
}

class SafetensorsFormatErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(SafetensorsFormatErrors, ThrowsNamingFileAndCulprit) {
  const BadCase& c = GetParam();
  try {
    io::parse_header(c.bytes.data(), c.bytes.size(), "dir/bad.safetensors");
    FAIL() << "accepted a malformed file";
  } catch (const sparsescope::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("safetensors file 'dir/bad.safetensors': "), std::string::npos) << message;
    for (const auto& part : c.expected)
      EXPECT_NE(message.find(part), std::string::npos) << message << "\n  lacks: " << part;
  }
}

INSTANTIATE_TEST_SUITE_P(SafetensorsHardening, SafetensorsFormatErrors, ::testing::ValuesIn(bad_cases()),
                         [](const auto& info) { return info.param.label; });

TEST(SafetensorsFormat, EmptyHeaderIsAnEmptyFile) {
  const auto h = parse(file_with("{}"));
  EXPECT_TRUE(h.tensors.empty());
  EXPECT_TRUE(h.metadata.empty());
  EXPECT_EQ(h.data_start, 10u);
}

TEST(SafetensorsFormat, KeepsHeaderOrderAndAcceptsOffsetsInAnyOrder) {
  // Older writers ordered the header by name, not by offset; the reference reader sorts.
  const std::string header = "{" + tensor("z", "\"F16\"", "[2]", "[8,12]") + "," +
                             tensor("a", "\"F64\"", "[]", "[0,8]") + "," + tensor("m", "\"U8\"", "[0,3]", "[12,12]") +
                             "}";
  const auto h = parse(file_with(header, 12));
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors[0].name, "z");
  EXPECT_EQ(h.tensors[0].dtype, io::Dtype::F16);
  EXPECT_EQ(h.tensors[0].shape, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(h.tensors[0].begin, 8u);
  EXPECT_EQ(h.tensors[0].end, 12u);
  EXPECT_EQ(h.tensors[1].name, "a");
  EXPECT_TRUE(h.tensors[1].shape.empty()) << "0-d tensor";
  EXPECT_EQ(h.tensors[2].name, "m");
  EXPECT_EQ(h.tensors[2].shape, (std::vector<std::int64_t>{0, 3}));
  EXPECT_EQ(h.data_start, 8u + header.size());
}

TEST(SafetensorsFormat, AcceptsSpacePaddingNullMetadataAndUnknownEntryFields) {
  auto h = parse(file_with("{\"__metadata__\":null," + tensor("w", "\"BOOL\"", "[3]", "[0,3]") + "}      ", 3));
  EXPECT_TRUE(h.metadata.empty());
  ASSERT_EQ(h.tensors.size(), 1u);
  EXPECT_EQ(h.tensors[0].dtype, io::Dtype::BOOL);
  // serde ignores fields it does not know, so the reference reader accepts them too.
  h = parse(file_with("{\"w\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2],\"extra\":[1]}}", 2));
  EXPECT_EQ(h.tensors.at(0).end, 2u);
}

TEST(SafetensorsFormat, ReadsMetadataAndPackedDtypes) {
  const auto h = parse(file_with("{\"__metadata__\":{\"format\":\"pt\",\"\xc3\xa9\":\"\"}," +
                                     tensor("f4", "\"F4\"", "[2,3]", "[0,3]") + "," +
                                     tensor("f6", "\"F6_E2M3\"", "[4]", "[3,6]") + "}",
                                 6));
  EXPECT_EQ(h.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"\xc3\xa9", ""}}));
  EXPECT_EQ(h.tensors.at(0).dtype, io::Dtype::F4);
  EXPECT_EQ(h.tensors.at(1).dtype, io::Dtype::F6_E2M3);
}

TEST(SafetensorsFormat, DtypeTableMatchesTheSpec) {
  const std::vector<std::pair<std::string, int>> spec = {
      {"BOOL", 8},        {"U8", 8},          {"I8", 8},      {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8},
      {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16},    {"U16", 16},    {"F16", 16},    {"BF16", 16},
      {"I32", 32},        {"U32", 32},        {"F32", 32},    {"C64", 64},    {"F64", 64},    {"I64", 64},
      {"U64", 64},        {"F4", 4},          {"F6_E2M3", 6}, {"F6_E3M2", 6}};
  for (const auto& [name, bits] : spec) {
    const auto dtype = io::dtype_from_name(name);
    ASSERT_TRUE(dtype.has_value()) << name;
    EXPECT_EQ(io::dtype_name(*dtype), name);
    EXPECT_EQ(io::dtype_bits(*dtype), bits) << name;
  }
  EXPECT_FALSE(io::dtype_from_name("F32 ").has_value());
  EXPECT_EQ(io::tensor_bytes(io::Dtype::BF16, {}), 2u);
  EXPECT_EQ(io::tensor_bytes(io::Dtype::F64, {3, 0, 5}), 0u);
  EXPECT_EQ(io::tensor_bytes(io::Dtype::F6_E3M2, {4}), 3u);
  EXPECT_FALSE(io::tensor_bytes(io::Dtype::F6_E3M2, {3}).has_value());
  EXPECT_FALSE(io::tensor_bytes(io::Dtype::I64, {1ll << 62, 4}).has_value());
}

std::vector<io::TensorInfo> every_dtype() {
  std::vector<io::TensorInfo> tensors;
  for (const char* name : {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ",
                           "I16",  "U16", "F16", "BF16",    "I32",     "U32",     "F32",         "C64",
                           "F64",  "I64", "U64", "F4",      "F6_E2M3", "F6_E3M2"}) {
    io::TensorInfo t;
    t.name = std::string("t.") + name;
    t.dtype = *io::dtype_from_name(name);
    t.shape = {3, 4};
    tensors.push_back(t);
  }
  tensors.push_back({"scalar", io::Dtype::I16, {}, 0, 0});
  tensors.push_back({"empty", io::Dtype::F64, {0, 7}, 0, 0});
  return tensors;
}

TEST(SafetensorsFormat, WriterLayoutAlignsEveryTensorAndRoundTrips) {
  auto tensors = every_dtype();
  const std::uint64_t data_size = io::assign_offsets(tensors, "out.safetensors");
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "a \"quoted\"\nline"}};
  const std::string prefix = io::serialize_header(tensors, metadata, "out.safetensors");
  ASSERT_EQ(prefix.size() % 8, 0u) << "header padded to 8 bytes like the Python writer";
  EXPECT_EQ(prefix.substr(0, 8), length_prefix(prefix.size() - 8));
  EXPECT_EQ(prefix.substr(8, 17), "{\"__metadata__\":{");
  EXPECT_EQ(prefix.back() == ' ' || prefix.back() == '}', true);

  std::uint64_t total = 0;
  for (const auto& t : tensors) {
    total += t.end - t.begin;
    const int bytes = io::dtype_bits(t.dtype) / 8;
    if (io::dtype_bits(t.dtype) % 8 == 0) {
      EXPECT_EQ((prefix.size() + t.begin) % bytes, 0u) << t.name << " misaligned at " << t.begin;
    }
  }
  EXPECT_EQ(total, data_size);

  const std::string file = prefix + std::string(data_size, '\0');
  const auto h = parse(file);
  EXPECT_EQ(h.metadata, metadata);
  EXPECT_EQ(h.data_start, prefix.size());
  ASSERT_EQ(h.tensors.size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(h.tensors[i].name, tensors[i].name);
    EXPECT_EQ(h.tensors[i].dtype, tensors[i].dtype);
    EXPECT_EQ(h.tensors[i].shape, tensors[i].shape);
    EXPECT_EQ(h.tensors[i].begin, tensors[i].begin);
    EXPECT_EQ(h.tensors[i].end, tensors[i].end);
  }
}

TEST(SafetensorsFormat, WriterOmitsEmptyMetadataAndKeepsOddNames) {
  std::vector<io::TensorInfo> tensors = {{"w\"\\/\xe2\x82\xac", io::Dtype::U8, {5}, 0, 0}};
  const auto size = io::assign_offsets(tensors, "x");
  const std::string prefix = io::serialize_header(tensors, {}, "x");
  EXPECT_EQ(prefix.find("__metadata__"), std::string::npos);
  const auto h = parse(prefix + std::string(size, '\1'));
  EXPECT_EQ(h.tensors.at(0).name, tensors[0].name);
}

TEST(SafetensorsFormat, WriterRefusesBadNames) {
  const auto message = [](const std::vector<io::TensorInfo>& tensors, const std::map<std::string, std::string>& meta) {
    try {
      io::serialize_header(tensors, meta, "out/w.safetensors");
    } catch (const sparsescope::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const io::TensorInfo a{"a", io::Dtype::F32, {}, 0, 4};
  EXPECT_NE(message({a, a}, {}).find("safetensors file 'out/w.safetensors': duplicate tensor name 'a'"),
            std::string::npos);
  EXPECT_NE(message({{"__metadata__", io::Dtype::F32, {}, 0, 4}}, {}).find("tensor name '__metadata__' is reserved"),
            std::string::npos);
  EXPECT_NE(message({{"bad\xff", io::Dtype::F32, {}, 0, 4}}, {}).find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(message({}, {{"k", "\xc3"}}).find("__metadata__ value of key 'k' is not valid UTF-8"), std::string::npos);

  std::vector<io::TensorInfo> packed = {{"p", io::Dtype::F4, {3}, 0, 0}};
  try {
    io::assign_offsets(packed, "out/w.safetensors");
    FAIL() << "accepted 12 bits of F4";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'p'"), std::string::npos) << e.what();
  }
}

TEST(SafetensorsFormat, ReadsTheHeaderOfAFileWrittenByPython) {
  // scripts/fixtures/make_tensor_fixtures.py: safetensors.torch.save_file of every dtype.
  const fs::path path = fs::path(SPARSESCOPE_FIXTURES_DIR) / "tensors" / "python_dtypes.safetensors";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.is_open()) << path;
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const auto h = parse(bytes, "python_dtypes.safetensors");
  EXPECT_EQ(h.data_start % 8, 0u);
  EXPECT_EQ(h.metadata.at("producer"), "make_tensor_fixtures.py");
  std::map<std::string, io::TensorInfo> by_name;
  for (const auto& t : h.tensors) by_name.emplace(t.name, t);
  ASSERT_EQ(by_name.size(), 12u);
  EXPECT_EQ(by_name.at("f32").dtype, io::Dtype::F32);
  EXPECT_EQ(by_name.at("f32").shape, (std::vector<std::int64_t>{2, 3, 4}));
  EXPECT_EQ(by_name.at("bf16").dtype, io::Dtype::BF16);
  EXPECT_EQ(by_name.at("scalar_f64").shape, std::vector<std::int64_t>{});
  EXPECT_EQ(by_name.at("empty_f32").shape, (std::vector<std::int64_t>{0, 3}));
  EXPECT_EQ(by_name.at("bool").dtype, io::Dtype::BOOL);
}

}  // namespace
