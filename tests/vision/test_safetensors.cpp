// The LibTorch safetensors layer: round trips of every dtype, zero-copy mapping, atomic writes,
// and interop with Python's safetensors in both directions.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fixture_values.h"
#include "files.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/safetensors.h"

namespace sv = sparsescope::vision;
namespace fs = std::filesystem;
using sparsescope::testing::fixture_values;
using sparsescope::testing::kTensorFixtures;
using sparsescope::testing::same_tensor;

using sparsescope::test::contains;
using sparsescope::test::error_of;
using sparsescope::test::read_bytes;
using sparsescope::test::remove_tree;
using sparsescope::test::write_bytes;

namespace {



// Address ranges this process maps from `path`, read from /proc/self/maps.
std::vector<std::pair<std::uintptr_t, std::uintptr_t>> mappings_of(const fs::path& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) return {};
  const std::string target = resolved;
  std::ifstream maps("/proc/self/maps");
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> out;
  for (std::string line; std::getline(maps, line);) {
    const auto slash = line.find('/');
    if (slash == std::string::npos || line.substr(slash) != target) continue;
    std::istringstream fields(line);
    std::uintptr_t begin = 0, end = 0;
    char dash = 0;
    fields >> std::hex >> begin >> dash >> end;
    out.emplace_back(begin, end);
  }
  return out;
}

bool inside(const std::vector<std::pair<std::uintptr_t, std::uintptr_t>>& ranges, const at::Tensor& t) {
  const auto begin = reinterpret_cast<std::uintptr_t>(t.const_data_ptr());
  for (const auto& [lo, hi] : ranges) {
    if (begin >= lo && begin + t.nbytes() <= hi) return true;
  }
  return false;
}

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sparsescope_safetensors_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    remove_tree(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    ::chmod(dir_.c_str(), 0700);
    remove_tree(dir_);
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path dir_;
};

// The ten dtypes of the Python fixture, plus 0-d and zero-size tensors, in a deliberate order.
sv::NamedTensors fixture_like() {
  sv::NamedTensors t;
  const std::pair<const char*, at::ScalarType> dtypes[] = {
      {"f64", at::kDouble}, {"f32", at::kFloat}, {"f16", at::kHalf}, {"bf16", at::kBFloat16}, {"i64", at::kLong},
      {"i32", at::kInt},    {"i16", at::kShort}, {"i8", at::kChar},  {"u8", at::kByte},       {"bool", at::kBool}};
  for (const auto& [name, dtype] : dtypes) t.emplace_back(name, fixture_values(dtype, {2, 3, 4}));
  t.emplace_back("scalar_f64", fixture_values(at::kDouble, {}));
  t.emplace_back("empty_f32", fixture_values(at::kFloat, {0, 3}));
  return t;
}

TEST_F(Safetensors, RoundTripsEveryDtypeScalarsEmptyTensorsAndMetadata) {
  auto tensors = fixture_like();
  // Odd sizes so that a misaligned layout would show in the zero-copy check below.
  tensors.emplace(tensors.begin(), "u8_odd", fixture_values(at::kByte, {3}));
  tensors.emplace_back("u16", at::arange(5, at::kInt).mul(12345).to(at::kUInt16));
  tensors.emplace_back("u32", at::arange(3, at::kLong).mul(4000000000LL).remainder(4294967296LL).to(at::kUInt32));
  tensors.emplace_back("u64", at::arange(3, at::kLong).mul(1LL << 61).to(at::kUInt64));
  tensors.emplace_back("c64", at::complex(fixture_values(at::kFloat, {3}), fixture_values(at::kFloat, {3}) * 2));
  tensors.emplace_back("f8_e4m3", fixture_values(at::kFloat, {7}).to(at::kFloat8_e4m3fn));
  tensors.emplace_back("f8_e5m2", fixture_values(at::kFloat, {7}).to(at::kFloat8_e5m2));
  tensors.emplace_back("f8_e5m2fnuz", fixture_values(at::kFloat, {7}).to(at::kFloat8_e5m2fnuz));
  tensors.emplace_back("f8_e4m3fnuz", fixture_values(at::kFloat, {7}).to(at::kFloat8_e4m3fnuz));
  tensors.emplace_back("f8_e8m0", at::full({2}, 4.0, at::kFloat).to(at::kFloat8_e8m0fnu));
  tensors.emplace_back("empty_bf16", at::empty({0}, at::kBFloat16));
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "caf\xc3\xa9 \"quoted\""}};
  const fs::path path = dir_ / "all.safetensors";
  sv::save_safetensors(path.string(), tensors, metadata);

  const auto file = sv::load_safetensors(path.string());
  EXPECT_EQ(file.metadata, metadata);
  ASSERT_EQ(file.tensors.size(), tensors.size());
  const auto maps = mappings_of(path);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, loaded] = file.tensors[i];
    EXPECT_EQ(name, tensors[i].first) << "header order is the write order";
    EXPECT_TRUE(same_tensor(loaded, tensors[i].second)) << name << ": " << loaded.scalar_type() << loaded.sizes();
    if (loaded.numel() > 0) {
      EXPECT_TRUE(inside(maps, loaded)) << name << " was copied, not mapped";
    }
  }
  EXPECT_EQ(file.tensors[11].second.dim(), 0);
  EXPECT_EQ(file.tensors[12].second.sizes(), (std::vector<std::int64_t>{0, 3}));
}

TEST_F(Safetensors, ZeroCopyMappingIsPrivateAndLivesAsLongAsTheTensors) {
  const fs::path path = dir_ / "w.safetensors";
  sv::save_safetensors(path.string(), {{"w", fixture_values(at::kFloat, {64, 64})}});
  const std::string before = read_bytes(path);
  at::Tensor w;
  {
    auto file = sv::load_safetensors(path.string());
    w = file.tensors.at(0).second;
    ASSERT_EQ(mappings_of(path).size(), 1u);
    EXPECT_TRUE(inside(mappings_of(path), w));
  }
  // The SafetensorsFile is gone; the tensor keeps the mapping alive and stays readable/writable.
  EXPECT_TRUE(inside(mappings_of(path), w));
  EXPECT_TRUE(same_tensor(w, fixture_values(at::kFloat, {64, 64})));
  w.mul_(2);
  EXPECT_EQ(read_bytes(path), before) << "in-place writes must not reach the file";
  EXPECT_FLOAT_EQ(w[1][0].item<float>(), 2 * static_cast<float>(64 * 0.37 - 2.5));
  w = at::Tensor();
  EXPECT_TRUE(mappings_of(path).empty()) << "the last tensor's deleter unmaps the file";
}

TEST_F(Safetensors, MisalignedTensorsAreCopied) {
  // Python's writer never produces this (it orders by alignment); other writers may.
  const std::string header =
      R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(padded.size());
  bytes[1] = static_cast<char>(padded.size() >> 8);
  const float f[2] = {1.5f, -2.25f};
  bytes += padded + std::string(1, '\x07') + std::string(reinterpret_cast<const char*>(f), sizeof f);
  const fs::path path = dir_ / "odd.safetensors";
  write_bytes(path, bytes);

  const auto file = sv::load_safetensors(path.string());
  const at::Tensor& t = file.tensors.at(1).second;
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.const_data_ptr()) % alignof(float), 0u);
  EXPECT_FALSE(inside(mappings_of(path), t));
  EXPECT_TRUE(at::equal(t, at::tensor({1.5f, -2.25f})));
  EXPECT_EQ(file.tensors.at(0).second.item<std::uint8_t>(), 7);
}

TEST_F(Safetensors, SavesNonContiguousViewsAndLazyConjugatesByValue) {
  const at::Tensor base = fixture_values(at::kFloat, {4, 6});
  const at::Tensor complex = at::complex(fixture_values(at::kFloat, {3}), at::ones({3}));
  const sv::NamedTensors tensors = {{"t", base.t()},
                                    {"slice", base.slice(1, 1, 5, 2)},
                                    {"expanded", at::ones({1, 3}).expand({4, 3})},
                                    {"conj", complex.conj()},
                                    {"grad", base.clone().requires_grad_(true)}};
  const fs::path path = dir_ / "views.safetensors";
  sv::save_safetensors(path.string(), tensors);
  const auto file = sv::load_safetensors(path.string());
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_TRUE(same_tensor(file.tensors[i].second, tensors[i].second.detach().resolve_conj())) << tensors[i].first;
    EXPECT_FALSE(file.tensors[i].second.is_conj());
  }
}

TEST_F(Safetensors, LoadsFromMemoryIntoOwnedCopies) {
  const fs::path path = dir_ / "m.safetensors";
  sv::save_safetensors(path.string(), fixture_like(), {{"k", "v"}});
  auto bytes = std::make_unique<std::string>(read_bytes(path));
  const auto file = sv::load_safetensors(bytes->data(), bytes->size(), "memory.safetensors");
  bytes.reset();
  EXPECT_EQ(file.metadata.at("k"), "v");
  const auto expected = fixture_like();
  ASSERT_EQ(file.tensors.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(same_tensor(file.tensors[i].second, expected[i].second)) << expected[i].first;
  }
  const std::string bad = "\x10\0\0\0\0\0\0\0{\"x\":1}";
  EXPECT_TRUE(contains(error_of([&] { sv::load_safetensors(bad.data(), 4, "memory.safetensors"); }),
                       "safetensors file 'memory.safetensors': file has 4 bytes"));
}

TEST_F(Safetensors, WritesAtomicallyAndKeepsTheOldFileOnFailure) {
  const fs::path path = dir_ / "model.safetensors";
  sv::save_safetensors(path.string(), {{"old", at::ones({2})}});
  EXPECT_EQ(entries(), std::vector<std::string>{"model.safetensors"}) << "temporary file left behind";
  const std::string old_bytes = read_bytes(path);

  // A dtype safetensors cannot store: fails before anything is written.
  std::string message = error_of([&] {
    sv::save_safetensors(path.string(), {{"ok", at::ones({2})}, {"blocks.0.w", at::ones({2}, at::kComplexDouble)}});
  });
  EXPECT_TRUE(contains(message, path.string())) << message;
  EXPECT_TRUE(contains(message, "tensor 'blocks.0.w'")) << message;
  EXPECT_TRUE(contains(message, "ComplexDouble")) << message;

  message = error_of([&] { sv::save_safetensors(path.string(), {{"a", at::ones({1})}, {"a", at::ones({1})}}); });
  EXPECT_TRUE(contains(message, "duplicate tensor name 'a'")) << message;
  message = error_of([&] { sv::save_safetensors(path.string(), {{"__metadata__", at::ones({1})}}); });
  EXPECT_TRUE(contains(message, "reserved")) << message;
  message = error_of([&] { sv::save_safetensors(path.string(), {{"u", at::Tensor()}}); });
  EXPECT_TRUE(contains(message, "tensor 'u': undefined tensor")) << message;
  message = error_of([&] { sv::save_safetensors(path.string(), {{"s", at::ones({2, 2}).to_sparse()}}); });
  EXPECT_TRUE(contains(message, "tensor 's': layout Sparse")) << message;
  EXPECT_EQ(read_bytes(path), old_bytes);
  EXPECT_EQ(entries(), std::vector<std::string>{"model.safetensors"});

  // The rename fails when the target is a non-empty directory: the temporary file is removed.
  fs::create_directories(dir_ / "taken.safetensors" / "inside");
  message = error_of([&] { sv::save_safetensors((dir_ / "taken.safetensors").string(), {{"x", at::ones({1})}}); });
  EXPECT_TRUE(contains(message, "taken.safetensors")) << message;
  EXPECT_EQ(entries(), (std::vector<std::string>{"model.safetensors", "taken.safetensors"}));

  message = error_of([&] {
    sv::save_safetensors((dir_ / "missing" / "x.safetensors").string(), {{"x", at::ones({1})}});
  });
  EXPECT_TRUE(contains(message, (dir_ / "missing").string())) << message;
}

TEST_F(Safetensors, UnwritableDirectoryLeavesTheOldFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions; covered by the other failure cases";
  const fs::path path = dir_ / "model.safetensors";
  sv::save_safetensors(path.string(), {{"old", at::ones({2})}});
  const std::string old_bytes = read_bytes(path);
  ::chmod(dir_.c_str(), 0500);
  const std::string message = error_of([&] { sv::save_safetensors(path.string(), {{"new", at::zeros({3})}}); });
  ::chmod(dir_.c_str(), 0700);
  EXPECT_TRUE(contains(message, path.string())) << message;
  EXPECT_EQ(read_bytes(path), old_bytes);
  EXPECT_EQ(entries(), std::vector<std::string>{"model.safetensors"});
}

TEST_F(Safetensors, ReadErrorsNameTheFileAndTensor) {
  EXPECT_TRUE(contains(error_of([&] { sv::load_safetensors((dir_ / "none.safetensors").string()); }),
                       "cannot open safetensors file '" + (dir_ / "none.safetensors").string() + "': No such file"));
  EXPECT_TRUE(contains(error_of([&] { sv::load_safetensors(dir_.string()); }), "not a regular file"));
  write_bytes(dir_ / "empty.safetensors", "");
  EXPECT_TRUE(contains(error_of([&] { sv::load_safetensors((dir_ / "empty.safetensors").string()); }),
                       "empty.safetensors': file has 0 bytes"));

  const auto file_with = [&](const std::string& name, const std::string& header, const std::string& data) {
    std::string bytes(8, '\0');
    bytes[0] = static_cast<char>(header.size());
    write_bytes(dir_ / name, bytes + header + data);
    return error_of([&] { sv::load_safetensors((dir_ / name).string()); });
  };
  std::string message =
      file_with("f4.safetensors", R"({"packed":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})", "\x12");
  EXPECT_TRUE(contains(message, "f4.safetensors': tensor 'packed': dtype F4 has no LibTorch equivalent")) << message;
  message = file_with("bool.safetensors", R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})",
                      std::string("\1\0\2", 3));
  EXPECT_TRUE(contains(message, "bool.safetensors': tensor 'm': BOOL data holds byte value 2 at element 2")) << message;
  message = file_with("gap.safetensors", R"({"w":{"dtype":"I8","shape":[1],"data_offsets":[1,2]}})", "ab");
  EXPECT_TRUE(contains(message, "gap.safetensors': tensor 'w': data_offsets [1, 2] leave a gap")) << message;
}

TEST_F(Safetensors, ReadsAFileWrittenByPythonExactly) {
  const fs::path path = kTensorFixtures / "python_dtypes.safetensors";
  const auto file = sv::load_safetensors(path.string());
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"producer", "make_tensor_fixtures.py"}}));
  std::map<std::string, at::Tensor> by_name(file.tensors.begin(), file.tensors.end());
  const auto expected = fixture_like();
  ASSERT_EQ(by_name.size(), expected.size());
  const auto maps = mappings_of(path);
  for (const auto& [name, tensor] : expected) {
    ASSERT_TRUE(by_name.count(name)) << name;
    EXPECT_TRUE(same_tensor(by_name.at(name), tensor)) << name << "\n" << by_name.at(name) << "\nexpected\n" << tensor;
    if (tensor.numel() > 0) {
      EXPECT_TRUE(inside(maps, by_name.at(name))) << name << " was copied, not mapped";
    }
  }
}

TEST_F(Safetensors, PythonReadsAFileWeWrite) {
  const std::string python = SPARSESCOPE_PYTHON;
  const fs::path scripts = fs::path(SPARSESCOPE_FIXTURES_DIR).parent_path().parent_path() / "scripts" / "fixtures";
  const fs::path path = dir_ / "ours.safetensors";
  sv::save_safetensors(path.string(), fixture_like(), {{"producer", "sparsescope"}});

  // Exit 3: the module is missing (skip); 0: every tensor equals the script's own formula.
  const fs::path script = dir_ / "check.py";
  std::ofstream(script) << "import sys\n"
                           "try:\n"
                           "    from safetensors import safe_open\n"
                           "    import torch\n"
                           "except ImportError:\n"
                           "    sys.exit(3)\n"
                           "sys.path.insert(0, sys.argv[2])\n"
                           "from make_tensor_fixtures import DTYPES, values\n"
                           "expected = {k: values(d, (2, 3, 4)) for k, d in DTYPES.items()}\n"
                           "expected['scalar_f64'] = values(torch.float64, ())\n"
                           "expected['empty_f32'] = values(torch.float32, (0, 3))\n"
                           "with safe_open(sys.argv[1], framework='pt') as f:\n"
                           "    assert f.metadata() == {'producer': 'sparsescope'}, f.metadata()\n"
                           "    assert sorted(f.keys()) == sorted(expected), f.keys()\n"
                           "    for k, v in expected.items():\n"
                           "        t = f.get_tensor(k)\n"
                           "        assert t.dtype == v.dtype and t.shape == v.shape and torch.equal(t, v), k\n";
  const std::string command = "'" + python + "' '" + script.string() + "' '" + path.string() + "' '" +
                              scripts.string() + "' > '" + (dir_ / "log").string() + "' 2>&1";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << command;
  if (WEXITSTATUS(status) == 3) GTEST_SKIP() << python << " cannot import safetensors and torch";
  EXPECT_EQ(WEXITSTATUS(status), 0) << command << "\n" << read_bytes(dir_ / "log");
}

}  // namespace
