// .pth state dicts through LibTorch's unpickler, checkpoint unwrapping, and the reader dispatch.
// Fixtures: scripts/fixtures/make_tensor_fixtures.py.
#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "fixture_values.h"
#include "files.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/state_dict.h"

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

// make_tensor_fixtures.py `state_dict()`, entry by entry.
sv::NamedTensors expected_state_dict() {
  const at::Tensor patch = fixture_values(at::kFloat, {4, 3, 2, 2});
  return {
      {"patch_embed.proj.weight", patch},
      {"patch_embed.proj.bias", fixture_values(at::kFloat, {4})},
      {"blocks.0.qkv.weight", fixture_values(at::kFloat, {12, 4})},
      {"blocks.0.qkv.bias", fixture_values(at::kFloat, {12})},
      {"norm.weight", fixture_values(at::kFloat, {4})},
      {"norm.bias", fixture_values(at::kFloat, {4})},
      {"norm.running_mean", fixture_values(at::kFloat, {4})},
      {"norm.running_var", fixture_values(at::kFloat, {4})},
      {"norm.num_batches_tracked", at::scalar_tensor(7, at::kLong)},
      {"pos_embed", fixture_values(at::kBFloat16, {1, 3, 4})},
      {"head.bias", fixture_values(at::kHalf, {6})},
      {"proj_t", fixture_values(at::kFloat, {4, 5}).t()},
      {"shared", patch[1][0][1]},
      {"mask", fixture_values(at::kBool, {5})},
  };
}

void expect_state_dict(const sv::NamedTensors& got, const std::string& prefix = "") {
  const auto expected = expected_state_dict();
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(got[i].first, prefix + expected[i].first) << "file order kept";
    EXPECT_TRUE(same_tensor(got[i].second, expected[i].second)) << got[i].first << "\n"
                                                                << got[i].second << "\nexpected\n"
                                                                << expected[i].second;
  }
}



class StateDict : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sparsescope_state_dict_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    remove_tree(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { remove_tree(dir_); }

  // A torch.save-compatible zip of `value`, made by LibTorch's own pickler.
  fs::path pickled(const std::string& name, const c10::IValue& value) {
    const std::vector<char> bytes = torch::jit::pickle_save(value);
    write_bytes(dir_ / name, std::string(bytes.begin(), bytes.end()));
    return dir_ / name;
  }
  fs::path dir_;
};

TEST_F(StateDict, LoadsAPthStateDictWithExactValues) {
  const auto sd = sv::load_pth_state_dict((kTensorFixtures / "state_dict.pth").string());
  expect_state_dict(sd);
  // torch.save stores a shared storage once; the view must still alias its base.
  EXPECT_TRUE(sd[12].second.storage().is_alias_of(sd[0].second.storage()));
  EXPECT_EQ(sd[12].second.storage_offset(), 14);
  EXPECT_EQ(sd[11].second.strides(), (std::vector<std::int64_t>{1, 5}));
}

TEST_F(StateDict, UnwrapsCheckpointNesting) {
  expect_state_dict(sv::load_pth_state_dict((kTensorFixtures / "nested_model.pth").string()));
  // BasicSR: both "params" and "params_ema"; the EMA weights are the ones to evaluate.
  expect_state_dict(sv::load_pth_state_dict((kTensorFixtures / "nested_params_ema.pth").string()));
  // Only the nesting is removed, never a prefix.
  expect_state_dict(sv::load_pth_state_dict((kTensorFixtures / "nested_state_dict_module.pth").string()), "module.");

  c10::Dict<std::string, at::Tensor> inner;
  inner.insert("w", at::ones({2}));
  c10::impl::GenericDict middle(c10::StringType::get(), c10::AnyType::get());
  middle.insert("state_dict", c10::IValue(inner));
  middle.insert("step", c10::IValue(10));
  c10::impl::GenericDict outer(c10::StringType::get(), c10::AnyType::get());
  outer.insert("model", c10::IValue(middle));
  outer.insert("args", c10::IValue("not a tensor"));
  const auto sd = sv::load_pth_state_dict(pickled("two_levels.pth", outer).string());
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd[0].first, "w");
}

TEST_F(StateDict, NonTensorEntriesAndNonDictsAreErrorsNamingFileAndKey) {
  const fs::path non_tensor = kTensorFixtures / "non_tensor_entry.pth";
  std::string message = error_of([&] { sv::load_pth_state_dict(non_tensor.string()); });
  EXPECT_TRUE(contains(message, "checkpoint '" + non_tensor.string() + "': entry ['epoch'] holds int, not a tensor"))
      << message;

  c10::impl::GenericDict nested(c10::StringType::get(), c10::AnyType::get());
  c10::impl::GenericDict model(c10::StringType::get(), c10::AnyType::get());
  model.insert("w", c10::IValue(at::ones({1})));
  model.insert("lr", c10::IValue(0.5));
  nested.insert("model", c10::IValue(model));
  const fs::path path = pickled("nested_bad.pth", nested);
  message = error_of([&] { sv::load_pth_state_dict(path.string()); });
  EXPECT_TRUE(contains(message, "nested_bad.pth': entry ['model']['lr'] holds float, not a tensor")) << message;

  c10::impl::GenericDict int_keys(c10::IntType::get(), c10::TensorType::get());
  int_keys.insert(c10::IValue(3), c10::IValue(at::ones({1})));
  message = error_of([&] { sv::load_pth_state_dict(pickled("int_keys.pth", int_keys).string()); });
  EXPECT_TRUE(contains(message, "int_keys.pth': key [3] is int, not a string")) << message;

  c10::impl::GenericList list(c10::AnyType::get());
  list.push_back(c10::IValue(at::ones({1})));
  message = error_of([&] { sv::load_pth_state_dict(pickled("list.pth", list).string()); });
  EXPECT_TRUE(contains(message, "list.pth': holds list, not a dict of tensors")) << message;
}

TEST_F(StateDict, CorruptTruncatedAndLegacyFilesAreClearErrors) {
  const std::string good = read_bytes(kTensorFixtures / "state_dict.pth");
  write_bytes(dir_ / "truncated.pth", good.substr(0, good.size() / 2));
  std::string message = error_of([&] { sv::load_pth_state_dict((dir_ / "truncated.pth").string()); });
  EXPECT_TRUE(contains(message, "checkpoint '" + (dir_ / "truncated.pth").string() + "': corrupt torch.save archive"))
      << message;

  // Damage the zip central directory at the end of the file; the local headers stay intact.
  std::string corrupt = good;
  for (std::size_t i = corrupt.size() - 60; i < corrupt.size(); ++i) corrupt[i] = static_cast<char>(~corrupt[i]);
  write_bytes(dir_ / "corrupt.pth", corrupt);
  message = error_of([&] { sv::load_state_dict((dir_ / "corrupt.pth").string()); });
  EXPECT_TRUE(contains(message, "corrupt.pth': corrupt torch.save archive")) << message;

  message = error_of([&] { sv::load_state_dict((kTensorFixtures / "legacy_format.pth").string()); });
  EXPECT_TRUE(contains(message, "legacy_format.pth': legacy (pre-1.6, non-zip) torch.save format")) << message;

  write_bytes(dir_ / "text.pth", "not a checkpoint");
  message = error_of([&] { sv::load_pth_state_dict((dir_ / "text.pth").string()); });
  EXPECT_TRUE(contains(message, "text.pth': not a torch.save zip archive")) << message;
  message = error_of([&] { sv::load_pth_state_dict((dir_ / "absent.pth").string()); });
  EXPECT_TRUE(contains(message, "cannot open checkpoint '" + (dir_ / "absent.pth").string() + "'")) << message;
}

// A torch.save-style zip whose data.pkl is `pickle` (hand-written protocol-2 opcodes) and whose
// data/0 holds two floats.
std::string zip_with_pickle(const std::string& pickle, bool with_storage = true) {
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, std::size_t n) {
    out.append(static_cast<const char*>(data), n);
    return n;
  });
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  const float values[2] = {1.5f, -2.0f};
  if (with_storage) writer.writeRecord("data/0", values, sizeof values);
  writer.writeEndOfFile();
  return out;
}

std::string unicode(const std::string& s) {
  std::string out = "X";
  for (int i = 0; i < 4; ++i) out += static_cast<char>((s.size() >> (8 * i)) & 0xff);
  return out + s;
}

// {"w": torch._utils._rebuild_tensor_v2(storage 0, offset, (size,), (1,), False, None)}
std::string tensor_pickle(int offset, int size) {
  return std::string("\x80\x02}q\x01") + unicode("w") + "ctorch._utils\n_rebuild_tensor_v2\n((" + unicode("storage") +
         "ctorch\nFloatStorage\n" + unicode("0") + unicode("cpu") + "K\x02tQK" + static_cast<char>(offset) + "K" +
         static_cast<char>(size) + "\x85K\x01\x85\x89NtRs.";
}

TEST_F(StateDict, HostilePicklesAreErrorsNotCrashes) {
  write_bytes(dir_ / "ok.pth", zip_with_pickle(tensor_pickle(0, 2)));
  const auto sd = sv::load_pth_state_dict((dir_ / "ok.pth").string());
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_TRUE(at::equal(sd[0].second, at::tensor({1.5f, -2.0f})));

  const auto message = [&](const std::string& name, const std::string& zip) {
    write_bytes(dir_ / name, zip);
    return error_of([&] { sv::load_pth_state_dict((dir_ / name).string()); });
  };
  std::string m = message("beyond.pth", zip_with_pickle(tensor_pickle(1, 2)));
  EXPECT_TRUE(contains(m,
                       "beyond.pth': data.pkl: tensor view (offset 1, size [2], stride [1]) reaches beyond its "
                       "storage of 2 elements"))
      << m;
  m = message("missing.pth", zip_with_pickle(tensor_pickle(0, 2), false));
  EXPECT_TRUE(contains(m, "missing.pth': data.pkl: storage record 'data/0' is missing")) << m;
  const std::string full = tensor_pickle(0, 2);
  m = message("cut.pth", zip_with_pickle(full.substr(0, full.size() / 2)));
  EXPECT_TRUE(contains(m, "cut.pth': data.pkl: ")) << m;
  m = message("text_int.pth", zip_with_pickle("\x80\x02I1\n."));
  EXPECT_TRUE(contains(m, "text_int.pth': data.pkl: unsupported pickle opcode 73 at byte 2")) << m;
  m = message("underflow.pth", zip_with_pickle("\x80\x02s."));
  EXPECT_TRUE(contains(m, "underflow.pth': data.pkl: stack underflow")) << m;
  m = message("memo.pth", zip_with_pickle("\x80\x02h\x07."));
  EXPECT_TRUE(contains(m, "memo.pth': data.pkl: memo entry 7 read before it was written")) << m;
  m = message("os_system.pth", zip_with_pickle("\x80\x02"
                                               "cos\nsystem\n" +
                                               unicode("true") + "\x85R."));
  EXPECT_TRUE(contains(m, "os_system.pth': holds object os.system, not a dict of tensors")) << m;
}

TEST_F(StateDict, LoadStateDictDispatchesOnMagicBytesNotExtensions) {
  expect_state_dict(sv::load_state_dict((kTensorFixtures / "state_dict.pth").string()));
  write_bytes(dir_ / "renamed.safetensors", read_bytes(kTensorFixtures / "state_dict.pth"));
  expect_state_dict(sv::load_state_dict((dir_ / "renamed.safetensors").string()));

  sv::save_safetensors((dir_ / "weights.pth").string(), {{"b", at::ones({2}, at::kHalf)}, {"a", at::arange(3)}});
  const auto sd = sv::load_state_dict((dir_ / "weights.pth").string());
  ASSERT_EQ(sd.size(), 2u);
  EXPECT_EQ(sd[0].first, "b");
  EXPECT_TRUE(same_tensor(sd[1].second, at::arange(3)));

  const auto python = sv::load_state_dict((kTensorFixtures / "python_dtypes.safetensors").string());
  EXPECT_EQ(python.size(), 12u);

  write_bytes(dir_ / "garbage.bin", "garbage");
  const std::string message = error_of([&] { sv::load_state_dict((dir_ / "garbage.bin").string()); });
  EXPECT_TRUE(contains(message, "safetensors file '" + (dir_ / "garbage.bin").string() + "'")) << message;
}

TEST_F(StateDict, CastFloatingConvertsOnlyFloatingTensors) {
  const auto cast = sv::cast_floating(sv::load_pth_state_dict((kTensorFixtures / "state_dict.pth").string()), at::kFloat);
  const auto expected = expected_state_dict();
  ASSERT_EQ(cast.size(), expected.size());
  for (std::size_t i = 0; i < cast.size(); ++i) {
    const at::Tensor& want = expected[i].second;
    const at::Tensor converted = at::isFloatingType(want.scalar_type()) ? want.to(at::kFloat) : want;
    EXPECT_TRUE(same_tensor(cast[i].second, converted)) << cast[i].first;
  }
  EXPECT_EQ(cast[8].second.scalar_type(), at::kLong);
  EXPECT_EQ(cast[13].second.scalar_type(), at::kBool);
  EXPECT_EQ(cast[10].second.scalar_type(), at::kFloat);
}

}  // namespace
