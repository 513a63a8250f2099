// The LibTorch-free unpickler of torch.save's data.pkl: what the .pth fixtures hold, and hostile
// pickles as errors (also run under ASan/LSan in the sanitizer build).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "pickle_state_dict.h"
#include "sparsescope/kernels/error.h"

namespace io = sparsescope::vision::io;
namespace fs = std::filesystem;

namespace {

const fs::path kPickles = fs::path(SPARSESCOPE_FUZZ_CORPUS_DIR) / "pth_pickle";

std::vector<io::PickledTensor> read(const std::string& bytes) {
  return io::read_state_dict_pickle(bytes.data(), bytes.size(), "t.pth",
                                    [](const std::string&, const std::string&) -> std::int64_t { return 1000; });
}

std::string file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.is_open()) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(PthPickle, ReadsTheStateDictsOfTheFixtures) {
  const auto flat = read(file(kPickles / "state_dict.pkl"));
  ASSERT_EQ(flat.size(), 14u);  // scripts/fixtures/make_tensor_fixtures.py state_dict()
  EXPECT_EQ(flat[0].name, "patch_embed.proj.weight");
  EXPECT_EQ(flat[0].storage_type, "torch.FloatStorage");
  EXPECT_EQ(flat[0].sizes, (std::vector<std::int64_t>{4, 3, 2, 2}));
  EXPECT_EQ(flat[11].name, "proj_t");  // a transposed view of a [4, 5] tensor
  EXPECT_EQ(flat[11].sizes, (std::vector<std::int64_t>{5, 4}));
  EXPECT_EQ(flat[11].strides, (std::vector<std::int64_t>{1, 5}));
  const auto nested = read(file(kPickles / "nested_model.pkl"));  // {"model": ..., "epoch": ...}
  ASSERT_EQ(nested.size(), flat.size());
  EXPECT_EQ(nested[3].name, flat[3].name);
}

TEST(PthPickle, HostilePicklesAreErrors) {
  // A dict that holds itself: {"a": <the dict>} (PROTO 2, EMPTY_DICT, BINPUT 0, MARK, "a", BINGET 0,
  // SETITEMS, STOP); its values are owned by the unpickler, so the cycle cannot leak.
  const std::string cycle("\x80\x02}q\x00(X\x01\x00\x00\x00"
                          "a"
                          "h\x00u.",
                          16);
  try {
    read(cycle);
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_EQ(std::string(e.what()), "checkpoint 't.pth': entry ['a'] holds dict, not a tensor (not a state dict?)");
  }
  EXPECT_THROW(read(std::string("\x80\x02}q", 4)), sparsescope::Error);  // truncated
  EXPECT_THROW(read(std::string("\x80\x02h\x05.", 5)), sparsescope::Error);  // memo read before written
}
