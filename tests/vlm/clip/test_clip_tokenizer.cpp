// The CLIP tokenizer against open_clip's SimpleTokenizer (fixtures from
// scripts/fixtures/make_clip_tokenizer_fixtures.py): the same 77 ids for texts that exercise its
// cleaning, pattern, BPE and truncation, and for every COCO-mini caption when ../shared/data is
// there; the mechanics on a small vocabulary written here (so that they run without the data).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vlm/clip_tokenizer.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
namespace sl = sparsescope::vlm;

namespace {

const fs::path kVocab = fs::path(SPARSESCOPE_SHARED_DATA_DIR) / "clip" / "bpe_simple_vocab_16e6.txt.gz";

nlohmann::json tokenizer_fixture() {
  std::ifstream in(fs::path(SPARSESCOPE_FIXTURES_DIR) / "clip" / "tokenizer.json");
  return nlohmann::json::parse(in);
}

std::string fnv1a(const at::Tensor& row) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int64_t i = 0; i < row.size(0); ++i) {
    const int64_t v = row[i].item<int64_t>();
    for (int b = 0; b < 8; ++b) h = (h ^ ((static_cast<uint64_t>(v) >> (8 * b)) & 0xFF)) * 0x100000001b3ull;
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

class ClipTokenizerSmall : public sparsescope::test::TempDirTest {};

}  // namespace

TEST(ClipText, CleansAsOpenClip) {
  EXPECT_EQ(sl::clip_clean_text("  A  Photo\tOF\n a  CAT  "), "a photo of a cat");
  EXPECT_EQ(sl::clip_clean_text("&amp;amp; &lt;3 &notit; &#39;s &#x27;t &ampx"), "& <3 \xc2\xac" "it; 's 't &x");
  EXPECT_EQ(sl::clip_clean_text("\xe2\x80\x9cit\xe2\x80\x99s\xe2\x80\x9d"), "\"it's\"");  // curly quotes
  EXPECT_EQ(sl::clip_clean_text("\xc4\xb0stanbul \xc3\x85NGSTR\xc3\x96M"), "i\xcc\x87stanbul \xc3\xa5ngstr\xc3\xb6m");
  EXPECT_THROW(sl::clip_clean_text("bad \xff byte"), sparsescope::Error);
}

// "#header", then merges h e, l l, he ll, hell o</w>: ids are the 256 byte characters, the same with
// </w>, the merges in order, <start_of_text>, <end_of_text>.
TEST_F(ClipTokenizerSmall, MergesByRankAndPadsToTheContext) {
  const fs::path merges = dir_ / "merges.txt";
  std::ofstream(merges) << "#version: 0.2\nh e\nl l\nhe ll\nhell o</w>\n";
  const sl::ClipTokenizer t(merges.string());
  EXPECT_EQ(t.vocab_size(), 256 * 2 + 4 + 2);
  EXPECT_EQ(t.start_token(), 516);
  EXPECT_EQ(t.end_token(), 517);
  EXPECT_EQ(t.encode("Hello hello"), (std::vector<int64_t>{515, 515}));
  EXPECT_EQ(t.encode("hi"), (std::vector<int64_t>{'h' - '!', 256 + 'i' - '!'}));  // no merge: bytes
  // "hell" ends in "l</w>": "l l" does not apply, so "he" is followed by the two l's alone.
  EXPECT_EQ(t.encode("hell"), (std::vector<int64_t>{512, 'l' - '!', 256 + 'l' - '!'}));
  const at::Tensor ids = t.tokenize({"hello", "", std::string(100, '!')}, 6);
  EXPECT_TRUE(ids[0].equal(at::tensor({516, 515, 517, 0, 0, 0}, at::kLong)));
  EXPECT_TRUE(ids[1].equal(at::tensor({516, 517, 0, 0, 0, 0}, at::kLong)));
  EXPECT_EQ(ids[2][5].item<int64_t>(), 517);  // cut, and ended
  EXPECT_EQ(t.decode({515, 515}), "hello hello ");
  EXPECT_THROW(t.decode({9999}), sparsescope::Error);
  EXPECT_THROW(sl::ClipTokenizer((dir_ / "missing.txt").string()), sparsescope::Error);
}

TEST(ClipTokenizer, MatchesOpenClipOnItsTexts) {
  if (!fs::exists(kVocab)) GTEST_SKIP() << kVocab << " is absent (../shared/data): no CLIP vocabulary to test";
  const nlohmann::json f = tokenizer_fixture();
  const sl::ClipTokenizer t(kVocab.string());
  EXPECT_EQ(t.vocab_size(), f["vocab_size"].get<int64_t>());
  const std::vector<std::string> texts = f["texts"].get<std::vector<std::string>>();
  const at::Tensor ids = t.tokenize(texts);
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(t.encode(texts[i]), f["encode"][i].get<std::vector<int64_t>>()) << texts[i];
    const std::vector<int64_t> want = f["ids"][i].get<std::vector<int64_t>>();
    EXPECT_TRUE(ids[static_cast<int64_t>(i)].equal(at::tensor(want, at::kLong))) << texts[i];
  }
}

TEST(ClipTokenizer, MatchesOpenClipOnEveryCocoCaption) {
  const fs::path captions = fs::path(SPARSESCOPE_SHARED_DATA_DIR) / "coco-mini" / "annotations" / "captions_val2017.json";
  if (!fs::exists(kVocab) || !fs::exists(captions)) GTEST_SKIP() << "../shared/data is absent: no COCO captions to test";
  const nlohmann::json f = tokenizer_fixture();
  std::ifstream in(captions);
  const nlohmann::json annotations = nlohmann::json::parse(in)["annotations"];
  std::vector<std::string> texts;
  for (const auto& a : annotations) texts.push_back(a["caption"].get<std::string>());
  ASSERT_EQ(texts.size(), f["coco_captions"].get<size_t>());
  const at::Tensor ids = sl::ClipTokenizer(kVocab.string()).tokenize(texts);
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(fnv1a(ids[static_cast<int64_t>(i)]), f["coco_fnv1a"][i].get<std::string>()) << texts[i];
  }
}
