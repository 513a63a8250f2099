// The metadata of trace files without LibTorch: what the writer emits the parser returns, and
// malformed metadata is an error naming the file and the key.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <string>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/trace_metadata.h"

namespace sv = sparsescope::vision;

namespace {

sv::TraceMetadata example() {
  sv::TraceMetadata m;
  m.info.model = "vit_fmnist";
  m.info.method = "dense";
  m.info.input = "a.png";
  m.info.frame = 3;
  m.info.producer = "test";
  m.info.layout = {1, {1, 2, 3}, {{"prefix", 0, 1}, {"image", 1, 7}}};
  m.info.topk = {{4, 0.75f, "Coat"}, {2, std::nanf(""), ""}};
  m.sites = {{"blocks.0.attn", "dense", 7, 7, 1, 3, 1, 2}, {"blocks.1.attn", "topk", 7, 7, 2, 3, 3, 0}};
  m.sparsescope_version = "0.1.0";
  m.libtorch_version = "2.11.0";
  return m;
}

std::string error_of(const std::string& json) {
  try {
    sv::parse_trace_metadata(json, "t.safetensors");
  } catch (const sparsescope::Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(TraceMetadata, WhatIsWrittenIsReadBack) {
  const sv::TraceMetadata m = example();
  const std::string text = sv::trace_metadata_json(m);
  const sv::TraceMetadata back = sv::parse_trace_metadata(text, "t");
  EXPECT_EQ(sv::trace_metadata_json(back), text);
  EXPECT_EQ(back.info.layout.tokens(), 7);
  ASSERT_EQ(back.sites.size(), 2u);
  EXPECT_EQ(back.sites[1].pool, 2);
  EXPECT_EQ(back.sites[0].rows, 2);
  EXPECT_TRUE(std::isnan(back.info.topk[1].score));  // written as null
  EXPECT_EQ(back.info.topk[0].label, "Coat");
  EXPECT_EQ(back.libtorch_version, "2.11.0");
}

// The seeds of the fuzz target are accepted (the format 2 seed with parts, a map and a points
// layout; the format 1 seed of a ViT); their rewrite is format 2.
TEST(TraceMetadata, FuzzSeedsOfBothFormatsAreAccepted) {
  for (const char* name : {"v2_parts_points.json", "vit_sparsifiner.json"}) {
    std::ifstream in(std::string(SPARSESCOPE_FIXTURES_DIR) + "/../../fuzz/corpus/trace_metadata/" + name);
    ASSERT_TRUE(in) << name;
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const sv::TraceMetadata m = sv::parse_trace_metadata(text, name);
    EXPECT_NE(sv::trace_metadata_json(m).find("\"format_version\":2"), std::string::npos);
    if (std::string(name) == "v2_parts_points.json") {
      EXPECT_EQ(m.info.layout.kind, sv::kPointsLayout);
      EXPECT_EQ(m.info.layout.tokens(), 49);
      ASSERT_EQ(m.sites[0].parts.size(), 2u);
      EXPECT_EQ(m.sites[0].parts[1].merge, "lse");
      EXPECT_EQ(m.sites.back().kind, sv::kChannelMap);
    } else {
      EXPECT_EQ(m.info.layout.kind, sv::kGridLayout);
      EXPECT_EQ(m.sites[0].kind, sv::kAttentionMap);
    }
  }
}

TEST(TraceMetadata, ErrorsNameTheFileAndTheKey) {
  EXPECT_EQ(error_of("[1, 2"), "trace 't.safetensors': the \"sparsescope\" metadata is not a JSON object");
  EXPECT_EQ(error_of(R"({"format_version": 3})"),
            "trace 't.safetensors': format_version 3 is not supported (this build reads 1 to 2)");
  std::string text = sv::trace_metadata_json(example());
  const auto heads = text.find("\"heads\":3");
  ASSERT_NE(heads, std::string::npos);
  EXPECT_EQ(error_of(text.replace(heads, 9, "\"heads\":0")),
            "trace 't.safetensors': metadata key 'sites[blocks.0.attn].heads' is 0, outside [1, 65536]");
  text = sv::trace_metadata_json(example());
  const auto second = text.find("blocks.1.attn");
  EXPECT_EQ(error_of(text.replace(second, 13, "blocks.0.attn")),
            "trace 't.safetensors': site 'blocks.0.attn' is listed twice");
}
