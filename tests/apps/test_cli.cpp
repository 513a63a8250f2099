#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "process.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/safetensors.h"

namespace fs = std::filesystem;
using sparsescope::test::run_process;

namespace {

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sparsescope-cli-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static sparsescope::test::ProcessResult cli(const std::vector<std::string>& args) {
    return run_process(SPARSESCOPE_CLI, args);
  }
  static nlohmann::json summary(const fs::path& out) {
    std::ifstream in(out / "summary.json");
    return nlohmann::json::parse(in);
  }
  fs::path dir_;
};

TEST_F(Cli, HelpAndVersionExitZero) {
  auto help = cli({"--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("preprocess"), std::string::npos);
  auto sub_help = cli({"preprocess", "--help"});
  EXPECT_EQ(sub_help.status, 0);
  EXPECT_NE(sub_help.out.find("Examples"), std::string::npos);
  auto version = cli({"--version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_NE(version.out.find("0.1.0"), std::string::npos);
}

TEST_F(Cli, UsageErrorsExitTwoWithOneLine) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"frobnicate"}, {"preprocess", "--bogus-flag", "x"}, {"preprocess", "x.png"},
        {"preprocess", "x.png", "--out", "o", "--interpolation", "nearest"}}) {
    auto r = cli(args);
    EXPECT_EQ(r.status, 2) << args.front();
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  auto missing = cli({"preprocess", (dir_ / "no-such-dir").string(), "--out", (dir_ / "out").string()});
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("no-such-dir"), std::string::npos) << missing.err;
}

TEST_F(Cli, PreprocessBatchReportsBadItemsAndResumes) {
  const fs::path in = dir_ / "in";
  fs::create_directories(in / "nested");
  fs::copy_file(fs::path(SPARSESCOPE_SAMPLES_DIR) / "chelsea.png", in / "nested" / "cat.png");
  {
    std::ifstream good(in / "nested" / "cat.png", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(good)), {});
    std::ofstream(in / "truncated.png", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  }
  std::ofstream(in / "notes.png") << "this is not an image";
  std::ofstream(in / "ignored.txt") << "folders only yield image extensions";
  const fs::path out = dir_ / "out";

  auto first = cli({"preprocess", in.string(), "--out", out.string()});
  EXPECT_EQ(first.status, 1) << first.err;
  auto s = summary(out);
  EXPECT_EQ(s["succeeded"], 1);
  EXPECT_EQ(s["failed"], 2);
  EXPECT_NE(first.err.find("truncated.png"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("notes.png"), std::string::npos) << first.err;

  const auto file = sparsescope::vision::load_safetensors((out / "nested" / "cat.safetensors").string());
  ASSERT_EQ(file.tensors.size(), 1u);
  EXPECT_EQ(file.tensors.at(0).first, "input");
  EXPECT_EQ(file.tensors.at(0).second.sizes(), (std::vector<int64_t>{3, 224, 224}));
  const auto preview = sparsescope::vision::read_image((out / "nested" / "cat.png").string());
  EXPECT_EQ(preview.width, 224);
  EXPECT_EQ(preview.height, 224);
  EXPECT_FALSE(fs::exists(out / "notes.safetensors"));

  auto again = cli({"preprocess", in.string(), "--out", out.string(), "--json"});
  EXPECT_EQ(again.status, 1);
  auto resumed = nlohmann::json::parse(again.out);
  EXPECT_EQ(resumed["skipped"], 1);
  EXPECT_EQ(resumed["succeeded"], 0);

  auto forced = cli({"preprocess", (in / "nested").string(), "--out", out.string(), "--force", "--json"});
  EXPECT_EQ(forced.status, 0) << forced.err;
  EXPECT_EQ(nlohmann::json::parse(forced.out)["succeeded"], 1);
  for (const auto& entry : fs::recursive_directory_iterator(out)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << "temporary file left: " << entry.path();
  }
}

TEST_F(Cli, TensorsListsAWeightsFile) {
  const auto path = (dir_ / "w.safetensors").string();
  sparsescope::vision::save_safetensors(path, {{"blocks.0.attn.qkv.weight", at::zeros({6, 2}, at::kHalf)}}, {});
  auto r = cli({"tensors", path, "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["tensors"].size(), 1u);
  EXPECT_EQ(j["tensors"][0]["name"], "blocks.0.attn.qkv.weight");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json::array({6, 2}));
  EXPECT_EQ(j["elements"], 12);

  std::ofstream(dir_ / "bad.safetensors") << "garbage";
  auto bad = cli({"tensors", (dir_ / "bad.safetensors").string()});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("bad.safetensors"), std::string::npos) << bad.err;
}

}  // namespace
