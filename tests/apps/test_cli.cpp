#include <ATen/ATen.h>
#include <gtest/gtest.h>


#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "process.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/trace.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using sparsescope::test::run_process;

using sparsescope::test::kVitTinyWeights;

namespace {

class Cli : public sparsescope::test::TempDirTest {
 protected:
  static sparsescope::test::ProcessResult cli(const std::vector<std::string>& args) {
    return run_process(SPARSESCOPE_CLI, args);
  }
  static nlohmann::json summary(const fs::path& out) {
    std::ifstream in(out / "summary.json");
    return nlohmann::json::parse(in);
  }
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

void expect_no_temporary_files(const fs::path& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos)
        << "temporary file left: " << entry.path();
  }
}

TEST_F(Cli, InferRecordsTracesAndOverlaysAndResumesThem) {
  const fs::path in = dir_ / "in";
  fs::create_directories(in);
  fs::copy_file(fs::path(SPARSESCOPE_SAMPLES_DIR) / "chelsea.png", in / "cat.png");
  std::ofstream(in / "broken.png") << "not an image";
  const fs::path out = dir_ / "out";
  const std::vector<std::string> args{"infer", "--model", "vit_tiny_patch16_224", "--weights", kVitTinyWeights,
                                      "--input", in.string(), "--out", out.string(), "--record", "--overlays",
                                      "--colormap", "magma", "--json"};
  auto first = cli(args);
  EXPECT_EQ(first.status, 1) << first.err;
  auto s = nlohmann::json::parse(first.out);
  EXPECT_EQ(s["succeeded"], 1);
  EXPECT_EQ(s["failed"], 1);

  const fs::path trace_file = out / "traces" / "cat.png.trace.safetensors";
  const auto trace = sparsescope::vision::load_trace(trace_file.string());
  EXPECT_EQ(trace.info.model, "vit_tiny_patch16_224");
  EXPECT_EQ(trace.info.input, (in / "cat.png").string());
  EXPECT_EQ(trace.info.layout.tokens(), 197);
  ASSERT_EQ(trace.sites.size(), 12u);
  EXPECT_EQ(trace.sites.back().name, "blocks.11.attn");
  EXPECT_EQ(trace.sites[0].heads(), 3);
  EXPECT_EQ(trace.image.sizes(), at::IntArrayRef({224, 224, 3}));
  // Three heads tile as 2 x 2 images of 224 px with 4 px gaps; the rollout is one image.
  const auto heads = sparsescope::vision::read_image((out / "overlays" / "cat.png.heads.png").string());
  EXPECT_EQ(heads.width, 452);
  EXPECT_EQ(heads.height, 452);
  const auto rollout = sparsescope::vision::read_image((out / "overlays" / "cat.png.rollout.png").string());
  EXPECT_EQ(rollout.width, 224);
  expect_no_temporary_files(out);

  auto again = cli(args);
  EXPECT_EQ(again.status, 1);
  EXPECT_EQ(nlohmann::json::parse(again.out)["skipped"], 1);

  // A prediction without its trace is redone, and its line replaced rather than repeated.
  fs::remove(trace_file);
  auto redo = cli(args);
  EXPECT_EQ(nlohmann::json::parse(redo.out)["succeeded"], 1) << redo.err;
  EXPECT_TRUE(fs::exists(trace_file));
  std::ifstream predictions(out / "predictions.jsonl");
  int lines = 0;
  for (std::string line; std::getline(predictions, line);) lines += !line.empty();
  EXPECT_EQ(lines, 1);
}

// The bundled models (assets/models, beside the bundled samples).
const fs::path kModels = fs::path(SPARSESCOPE_SAMPLES_DIR).parent_path() / "models";
const std::string kSparsifinerWeights = (kModels / "sparsifiner_fmnist_k25.safetensors").string();
const fs::path kFashionSamples = fs::path(SPARSESCOPE_SAMPLES_DIR) / "fashion-mnist";

// labels.txt of the Fashion-MNIST samples: "file<TAB>class<TAB>label" per line.
std::map<std::string, int64_t> sample_labels() {
  std::map<std::string, int64_t> labels;
  std::ifstream in(kFashionSamples / "labels.txt");
  std::string file;
  int64_t label = -1;
  for (std::string rest; in >> file >> label && std::getline(in, rest);) labels[file] = label;
  return labels;
}

TEST_F(Cli, InferWithTheBundledSparsifinerRecordsTopkSites) {
  const fs::path out = dir_ / "out";
  auto r = cli({"infer", "--input", kFashionSamples.string(), "--weights", kSparsifinerWeights, "--out", out.string(),
                "--record", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["succeeded"], 10);

  // The weights run the method they were trained for, and still classify every sample right.
  const auto labels = sample_labels();
  ASSERT_EQ(labels.size(), 10u);
  std::ifstream predictions(out / "predictions.jsonl");
  int lines = 0;
  std::map<std::string, nlohmann::json> topk_of_source;
  for (std::string line; std::getline(predictions, line);) {
    if (line.empty()) continue;
    ++lines;
    const auto p = nlohmann::json::parse(line);
    const std::string input = p["input"];
    ASSERT_EQ(labels.count(input), 1u) << input;
    EXPECT_EQ(p["topk"][0]["class"].get<int64_t>(), labels.at(input)) << line;
    topk_of_source[p["source"].get<std::string>()] = p["topk"];
  }
  EXPECT_EQ(lines, 10);

  // 50 tokens (class token + 7 x 7 patches), keep rate 0.25: 13 keys per patch query, the class
  // token's row dense.
  const double density = (50.0 + 49.0 * 13.0) / (50.0 * 50.0);
  int traces = 0;
  for (const auto& entry : fs::directory_iterator(out / "traces")) {
    ++traces;
    const auto trace = sparsescope::vision::load_trace(entry.path().string());
    EXPECT_EQ(trace.info.method, "sparsifiner") << entry.path();
    EXPECT_EQ(trace.info.layout.tokens(), 50);
    // The trace carries the prediction of predictions.jsonl, named by the model card.
    const nlohmann::json& expected = topk_of_source.at(trace.info.input);
    ASSERT_EQ(trace.info.topk.size(), expected.size()) << entry.path();
    for (std::size_t j = 0; j < expected.size(); ++j) {
      EXPECT_EQ(trace.info.topk[j].index, expected[j]["class"].get<int64_t>());
      EXPECT_EQ(trace.info.topk[j].label, expected[j]["label"].get<std::string>());
      EXPECT_FLOAT_EQ(trace.info.topk[j].score, expected[j]["score"].get<float>());
    }
    ASSERT_EQ(trace.sites.size(), 9u) << entry.path();
    for (const auto& site : trace.sites) {
      EXPECT_EQ(site.pattern, "topk") << site.name;
      for (int64_t h = 0; h < site.heads(); ++h) {
        const float recall = site.stats[h][sparsescope::vision::kRecall].item<float>();
        EXPECT_TRUE(std::isfinite(recall) && recall > 0.0f && recall <= 1.0f)
            << site.name << " head " << h << ": " << recall;
        EXPECT_NEAR(site.stats[h][sparsescope::vision::kDensity].item<float>(), density, 1e-5) << site.name;
      }
    }
  }
  EXPECT_EQ(traces, 10);

  // --method dense runs the same backbone without the predictors.
  const fs::path dense_out = dir_ / "dense";
  auto dense = cli({"infer", "--input", (kFashionSamples / "00000_ankle_boot.png").string(), "--weights",
                    kSparsifinerWeights, "--method", "dense", "--out", dense_out.string(), "--record"});
  ASSERT_EQ(dense.status, 0) << dense.err;
  const auto trace =
      sparsescope::vision::load_trace((dense_out / "traces" / "00000_ankle_boot.png.trace.safetensors").string());
  EXPECT_EQ(trace.info.method, "dense");
  ASSERT_EQ(trace.sites.size(), 9u);
  for (const auto& site : trace.sites) {
    EXPECT_EQ(site.pattern, "dense") << site.name;
    EXPECT_TRUE(at::allclose(site.stats.select(1, sparsescope::vision::kDensity), at::ones({site.heads()})));
  }
}

TEST_F(Cli, InferSparsifinerWithDenseWeightsIsAUsageError) {
  // The default weights are the dense bundled model: no predictors.
  const fs::path out = dir_ / "out";
  auto r = cli({"infer", "--input", kFashionSamples.string(), "--method", "sparsifiner", "--out", out.string()});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("--method"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sparsifiner"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out)) << "nothing is written for a usage error";
}

// A small trace written through the library: 2 sites of 2 heads over a 2 x 2 grid and a class token.
sparsescope::vision::Trace small_trace() {
  sparsescope::vision::Trace t;
  t.info.model = "toy";
  t.info.method = "topk";
  t.info.producer = "test";
  t.info.topk = {{3, 0.625f, "cat"}, {1, 0.25f, ""}};
  t.info.layout.prefix = 1;
  t.info.layout.grid = {1, 2, 2};
  t.image = at::zeros({32, 32, 3}, at::kByte);
  for (int i = 0; i < 2; ++i) {
    sparsescope::vision::SiteTrace s;
    s.name = "blocks." + std::to_string(i) + ".attn";
    s.pattern = "topk";
    s.queries = s.keys = 5;
    s.probs = at::softmax(at::randn({2, 5, 5}), -1);
    s.mask = at::ones({1, 5, 5});
    s.stats = at::tensor({0.9f, 0.5f, 1.25f, 0.8f, 0.5f, 1.5f}).view({2, 3});
    s.row_queries = at::empty({0}, at::kLong);
    s.rows = at::empty({2, 0, 5});
    t.sites.push_back(s);
  }
  return t;
}

TEST_F(Cli, TraceInfoListsSitesAndStatistics) {
  const auto path = (dir_ / "t.trace.safetensors").string();
  sparsescope::vision::save_trace(small_trace(), path);
  auto info = cli({"trace", "info", path, "--per-head"});
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find("blocks.1.attn"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("5 x 5"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("0.850"), std::string::npos) << "mean recall over heads: " << info.out;
  EXPECT_NE(info.out.find("head 1"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("predicted cat 62.5 %, class 1 25.0 %"), std::string::npos) << info.out;
  auto json = cli({"trace", "info", path, "--json"});
  ASSERT_EQ(json.status, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["sites"].size(), 2u);
  EXPECT_EQ(j[0]["layout"]["tokens"], 5);
  EXPECT_EQ(j[0]["topk"][0]["label"], "cat");
  EXPECT_NEAR(j[0]["sites"][0]["heads"][1]["entropy"].get<double>(), 1.5, 1e-6);

  std::ofstream(dir_ / "bad.safetensors") << "garbage";
  auto bad = cli({"trace", "info", path, (dir_ / "bad.safetensors").string()});
  EXPECT_EQ(bad.status, 1);
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  EXPECT_NE(bad.err.find("bad.safetensors"), std::string::npos) << bad.err;
  EXPECT_NE(bad.out.find("blocks.1.attn"), std::string::npos) << "the good file is still listed";
}

TEST_F(Cli, TraceExportDrawsSitesAndRollout) {
  const fs::path traces = dir_ / "traces";
  fs::create_directories(traces);
  sparsescope::vision::save_trace(small_trace(), (traces / "cat.png.trace.safetensors").string());
  std::ofstream(traces / "bad.safetensors") << "garbage";
  const fs::path out = dir_ / "png";
  auto r = cli({"trace", "export", traces.string(), "--out", out.string(), "--colormap", "turbo"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("bad.safetensors"), std::string::npos) << r.err;
  for (const char* name : {"blocks.0.attn.png", "blocks.1.attn.png"}) {
    const auto image = sparsescope::vision::read_image((out / "cat.png" / name).string());
    EXPECT_EQ(image.width, 2 * 32 + 4) << name;
    EXPECT_EQ(image.height, 32) << name;
  }
  EXPECT_TRUE(fs::exists(out / "cat.png" / "rollout.png"));
  expect_no_temporary_files(out);

  auto one = cli({"trace", "export", (traces / "cat.png.trace.safetensors").string(), "--out", (dir_ / "one").string(),
                  "--sites", "blocks.1.attn", "--query", "3"});
  EXPECT_EQ(one.status, 0) << one.err;
  EXPECT_TRUE(fs::exists(dir_ / "one" / "cat.png" / "blocks.1.attn.png"));
  EXPECT_FALSE(fs::exists(dir_ / "one" / "cat.png" / "blocks.0.attn.png"));
  auto unknown = cli({"trace", "export", (traces / "cat.png.trace.safetensors").string(), "--out",
                      (dir_ / "two").string(), "--sites", "blocks.7.attn"});
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.err.find("blocks.0.attn, blocks.1.attn"), std::string::npos) << unknown.err;
}

TEST_F(Cli, TraceUsageErrorsAndHelp) {
  const auto path = (dir_ / "t.safetensors").string();
  sparsescope::vision::save_trace(small_trace(), path);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"trace"}, {"trace", "info"}, {"trace", "info", (dir_ / "none.safetensors").string()},
        {"trace", "export", path}, {"trace", "export", path, "--out", "o", "--colormap", "jet"},
        {"infer", "--model", "m", "--weights", "w", "--input", "i", "--out", "o", "--colormap", "jet"}}) {
    auto r = cli(args);
    EXPECT_EQ(r.status, 2) << args.back() << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  for (const std::vector<std::string>& args : {std::vector<std::string>{"trace", "--help"},
                                               {"trace", "info", "--help"}, {"trace", "export", "--help"}}) {
    auto r = cli(args);
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("Examples"), std::string::npos) << r.out;
  }
  EXPECT_NE(cli({"infer", "--help"}).out.find("--record"), std::string::npos);
}

}  // namespace

// `clip tokenize` with a small vocabulary (the real one is in ../shared/data; the ids are checked
// against open_clip in tests/vlm): 77 zero-padded ids per text in JSON, a cut text reported.
TEST_F(Cli, ClipTokenizePrintsOpenClipsIds) {
  const std::string vocab = (dir_ / "merges.txt").string();
  std::ofstream(vocab) << "#version: 0.2\nh e\nl l\nhe ll\nhell o</w>\n";
  auto r = cli({"clip", "tokenize", "Hello", std::string(100, '!'), "--vocab", vocab, "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  ASSERT_EQ(out["texts"].size(), 2u);
  EXPECT_EQ(out["texts"][0]["ids"].size(), 77u);
  EXPECT_EQ(out["texts"][0]["ids"][0], 516);
  EXPECT_EQ(out["texts"][0]["ids"][1], 515);
  EXPECT_EQ(out["texts"][0]["ids"][2], 517);
  EXPECT_EQ(out["texts"][0]["ids"][3], 0);
  EXPECT_TRUE(out["texts"][1]["truncated"].get<bool>());
  EXPECT_NE(r.err.find("cut to 77"), std::string::npos) << r.err;
  r = cli({"clip", "tokenize", "x", "--vocab", (dir_ / "none.gz").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("none.gz"), std::string::npos) << r.err;
}

