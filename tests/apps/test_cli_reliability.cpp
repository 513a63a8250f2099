// Hostile but fair input to the command line: every case ends with an exit status and a message
// naming what is wrong, never a signal, a hang or a lost result.
#include <ATen/ATen.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

// LibTorch's headers before Qt's (process.h), whose `slots` macro breaks them.
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/vit.h"
#include "process.h"
#include "temp_dir.h"

#ifdef SPARSESCOPE_TEST_VIDEO
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>
#endif

namespace fs = std::filesystem;
using sparsescope::test::ProcessResult;
using sparsescope::test::run_process;

namespace {

const fs::path kSamples = fs::path(SPARSESCOPE_SAMPLES_DIR) / "fashion-mnist";
const fs::path kBoot = kSamples / "00000_ankle_boot.png";
const fs::path kPullover = kSamples / "00001_pullover.png";
const fs::path kBundled = fs::path(SPARSESCOPE_SAMPLES_DIR).parent_path() / "models" / "vit_fmnist.safetensors";

class CliReliability : public sparsescope::test::TempDirTest {
 protected:
  static ProcessResult cli(const std::vector<std::string>& args) { return run_process(SPARSESCOPE_CLI, args); }
  static nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
  }
  static std::vector<nlohmann::json> predictions(const fs::path& out) {
    std::vector<nlohmann::json> lines;
    std::ifstream in(out / "predictions.jsonl");
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }
  // A copy of the bundled weights with one tensor replaced, as `out`.
  fs::path weights_with(const std::string& name, const at::Tensor& value, const std::string& out) const {
    auto file = sparsescope::vision::load_safetensors(kBundled.string());
    for (auto& [tensor_name, tensor] : file.tensors) {
      if (tensor_name == name) tensor = value;
    }
    const fs::path path = dir_ / out;
    sparsescope::vision::save_safetensors(path.string(), file.tensors, file.metadata);
    return path;
  }
  // A tiny ViT on the 8 x 8 IDX fixture (6 training images, 4 test images), `extra` appended.
  static std::vector<std::string> train_args(const fs::path& out, std::vector<std::string> extra) {
    std::vector<std::string> args{"train", "--dataset", "fashion-mnist:" + (fs::path(SPARSESCOPE_FIXTURES_DIR) / "datasets" / "idx").string(),
                                  "--out", out.string(), "--img-size", "8", "--patch-size", "4", "--embed-dim", "16",
                                  "--depth", "1", "--num-heads", "2", "--batch", "3", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_F(CliReliability, NamesThatAreNotUtf8AreEscapedAndResume) {
  const fs::path in = dir_ / "in", out = dir_ / "out";
  fs::create_directories(in / "Ankle boot");
  fs::copy_file(kBoot, in / "Ankle boot" / "caf\xe9.png");
  auto first = cli({"infer", "--input", in.string(), "--out", out.string()});
  ASSERT_EQ(first.status, 0) << first.err;
  auto lines = predictions(out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["input"], "Ankle boot/caf\\xE9.png");  // the byte written as \xE9
  EXPECT_TRUE(fs::exists(out / "summary.json"));
  auto again = cli({"infer", "--input", in.string(), "--out", out.string(), "--json"});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["skipped"], 1);  // the escaped name is a stable key

  auto recorded = cli({"infer", "--input", in.string(), "--out", (dir_ / "rec").string(), "--record"});
  ASSERT_EQ(recorded.status, 0) << recorded.err;
  const fs::path trace = dir_ / "rec" / "traces" / "Ankle boot" / "caf\\xE9.png.trace.safetensors";
  ASSERT_TRUE(fs::exists(trace));
  fs::copy_file(trace, dir_ / "tr\xe9.trace.safetensors");
  // QProcess passes arguments as UTF-8 text: the shell's printf makes the byte.
  auto info = run_process("/bin/sh", {"-c", "cd '" + dir_.string() + "' && exec '" + SPARSESCOPE_CLI +
                                                "' trace info \"$(printf 'tr\\351.trace.safetensors')\" --json"});
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_TRUE(contains(nlohmann::json::parse(info.out)[0]["file"].get<std::string>(), "tr\\xE9")) << info.out;

  auto pre = cli({"preprocess", in.string(), "--out", (dir_ / "pre").string(), "--json"});
  ASSERT_EQ(pre.status, 0) << pre.err;
  EXPECT_EQ(nlohmann::json::parse(pre.out)["succeeded"], 1);

  std::ofstream(in / "Ankle boot" / "broken\xe9.png") << "not an image";
  auto eval = cli({"eval", "--weights", kBundled.string(), "--dataset", in.string(), "--json"});
  EXPECT_EQ(eval.status, 1) << eval.err;
  const auto summary = nlohmann::json::parse(eval.out);
  EXPECT_EQ(summary["images"], 1);
  EXPECT_TRUE(contains(summary["failures"][0]["input"].get<std::string>(), "broken\\xE9.png")) << eval.out;

  std::ofstream(dir_ / "labels.txt") << "T-shirt\nCaf\xe9\n";
  auto labels = cli({"infer", "--input", in.string(), "--out", (dir_ / "lab").string(), "--labels",
                     (dir_ / "labels.txt").string()});
  EXPECT_EQ(labels.status, 2);
  EXPECT_TRUE(contains(labels.err, "line 2 is not UTF-8")) << labels.err;
}

TEST_F(CliReliability, SymbolicLinkLoopsAreReportedFailures) {
  const fs::path in = dir_ / "in";
  fs::create_directories(in / "Ankle boot");
  fs::copy_file(kBoot, in / "Ankle boot" / "boot.png");
  fs::create_symlink("b.png", in / "Ankle boot" / "a.png");
  fs::create_symlink("a.png", in / "Ankle boot" / "b.png");
  for (const std::string command : {"infer", "preprocess"}) {
    auto r = command == "infer" ? cli({"infer", "--input", in.string(), "--out", (dir_ / command).string(), "--json"})
                                : cli({"preprocess", in.string(), "--out", (dir_ / command).string(), "--json"});
    EXPECT_EQ(r.status, 1) << command << ": " << r.err;
    const auto summary = nlohmann::json::parse(r.out);
    EXPECT_EQ(summary["succeeded"], 1) << command;
    EXPECT_EQ(summary["failed"], 2) << command;
    EXPECT_TRUE(contains(r.err, "Too many levels of symbolic links")) << command << ": " << r.err;
  }
  auto eval = cli({"eval", "--weights", kBundled.string(), "--dataset", in.string(), "--json"});
  EXPECT_EQ(eval.status, 1) << eval.err;
  EXPECT_EQ(nlohmann::json::parse(eval.out)["failed"], 2);

  auto recorded = cli({"infer", "--input", kBoot.string(), "--out", (dir_ / "rec").string(), "--record"});
  ASSERT_EQ(recorded.status, 0) << recorded.err;
  const fs::path traces = dir_ / "rec" / "traces";
  fs::create_symlink("y.trace.safetensors", traces / "x.trace.safetensors");
  fs::create_symlink("x.trace.safetensors", traces / "y.trace.safetensors");
  auto exported = cli({"trace", "export", traces.string(), "--out", (dir_ / "png").string()});
  EXPECT_EQ(exported.status, 1) << exported.err;
  EXPECT_TRUE(contains(exported.err, "x.trace.safetensors")) << exported.err;
  EXPECT_TRUE(fs::exists(dir_ / "png" / "00000_ankle_boot.png" / "rollout.png"));
}

TEST_F(CliReliability, OutputFoldersThatCannotBeAreUsageErrors) {
  std::ofstream(dir_ / "file") << "a file";
  for (const std::string& out : {(dir_ / "file").string(), std::string("/proc/x"), std::string()}) {
    for (const auto& args : {std::vector<std::string>{"infer", "--input", kBoot.string(), "--out", out},
                             std::vector<std::string>{"preprocess", kBoot.string(), "--out", out},
                             train_args(out, {"--epochs", "1"})}) {
      auto r = cli(args);
      EXPECT_EQ(r.status, 2) << args[0] << " --out '" << out << "': " << r.err;
      // One line (train may first say what it trains on).
      const auto last = r.err.rfind('\n', r.err.size() - 2);
      EXPECT_TRUE(contains(r.err.substr(last == std::string::npos ? 0 : last), "--out")) << r.err;
      if (args[0] != "train") {
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      }
    }
  }
}

TEST_F(CliReliability, InputsAreCountedOnceAndNeverOverwriteEachOther) {
  fs::create_directories(dir_ / "A");
  fs::create_directories(dir_ / "B");
  fs::copy_file(kBoot, dir_ / "A" / "x.png");
  fs::copy_file(kPullover, dir_ / "B" / "x.png");
  auto clash = cli({"infer", "--input", (dir_ / "A").string(), "--input", (dir_ / "B").string(), "--out",
                    (dir_ / "out").string()});
  EXPECT_EQ(clash.status, 2);
  EXPECT_TRUE(contains(clash.err, "A/x.png") && contains(clash.err, "B/x.png")) << clash.err;
  EXPECT_FALSE(fs::exists(dir_ / "out" / "predictions.jsonl"));

  auto twice = cli({"infer", "--input", (dir_ / "A").string(), "--input", (dir_ / "A" / "x.png").string(), "--input",
                    (dir_ / "A").string(), "--out", (dir_ / "twice").string(), "--json"});
  ASSERT_EQ(twice.status, 0) << twice.err;
  EXPECT_EQ(nlohmann::json::parse(twice.out)["succeeded"], 1);

  // An --out inside the input folder: its overlays are outputs, not new inputs.
  for (int run = 0; run < 2; ++run) {
    auto r = cli({"infer", "--input", (dir_ / "A").string(), "--out", (dir_ / "A" / "out").string(), "--overlays",
                  "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    const auto summary = nlohmann::json::parse(r.out);
    EXPECT_EQ(summary["succeeded"], run == 0 ? 1 : 0);
    EXPECT_EQ(summary["skipped"], run == 0 ? 0 : 1);
  }
  EXPECT_EQ(predictions(dir_ / "A" / "out").size(), 1u);
}

TEST_F(CliReliability, AFolderInUseByAnotherRunIsRefused) {
  const fs::path out = dir_ / "out";
  fs::create_directories(out);
  const int fd = ::open((out / ".sparsescope.lock").c_str(), O_RDWR | O_CREAT, 0666);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as a running infer holds it
  const std::string pid = std::to_string(::getpid());
  ASSERT_EQ(::write(fd, pid.data(), pid.size()), static_cast<ssize_t>(pid.size()));
  auto refused = cli({"infer", "--input", kBoot.string(), "--out", out.string()});
  EXPECT_EQ(refused.status, 2);
  EXPECT_TRUE(contains(refused.err, "in use by another sparsescope run (process " + pid + ")")) << refused.err;
  EXPECT_FALSE(fs::exists(out / "predictions.jsonl"));
  ::close(fd);
  auto after = cli({"infer", "--input", kBoot.string(), "--out", out.string()});
  EXPECT_EQ(after.status, 0) << after.err;
  EXPECT_EQ(predictions(out).size(), 1u);
}

// --shard I/N: every N-th input from the I-th, the batch-wide files named per shard, shards side by
// side in one folder but never beside a whole run or a second run of the same shard.
TEST_F(CliReliability, ShardsSplitABatchAndShareTheFolder) {
  fs::create_directories(dir_ / "in");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(kSamples)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  names.resize(5);
  for (const auto& name : names) fs::copy_file(kSamples / name, dir_ / "in" / name);
  const fs::path out = dir_ / "out";
  auto shard = [&](const std::string& which) {
    return cli({"infer", "--input", (dir_ / "in").string(), "--out", out.string(), "--shard", which, "--json"});
  };
  std::vector<std::string> seen;
  for (const int index : {0, 1}) {
    const std::string suffix = ".shard-" + std::to_string(index) + "-of-2";
    auto r = shard(std::to_string(index) + "/2");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto summary = nlohmann::json::parse(r.out);
    EXPECT_EQ(summary["succeeded"], index == 0 ? 3 : 2);
    EXPECT_EQ(summary["shard"]["index"], index);
    EXPECT_EQ(summary["shard"]["count"], 2);
    EXPECT_EQ(read_json(out / ("summary" + suffix + ".json"))["succeeded"], summary["succeeded"]);
    std::ifstream in(out / ("predictions" + suffix + ".jsonl"));
    for (std::string line; std::getline(in, line);) seen.push_back(nlohmann::json::parse(line)["input"]);
  }
  EXPECT_FALSE(fs::exists(out / "summary.json"));
  EXPECT_FALSE(fs::exists(out / "predictions.jsonl"));
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, names);  // each input once, in one of the shards
  auto again = shard("0/2");  // resumes its own share
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["skipped"], 3);

  // Shard 0 running (its lock held, and the folder's shared): shard 1 runs, shard 0 and a whole
  // run are refused.
  const int folder = ::open((out / ".sparsescope.lock").c_str(), O_RDWR | O_CREAT, 0666);
  const int own = ::open((out / ".sparsescope.shard-0-of-2.lock").c_str(), O_RDWR | O_CREAT, 0666);
  ASSERT_TRUE(folder >= 0 && own >= 0);
  ASSERT_EQ(::flock(folder, LOCK_SH | LOCK_NB), 0);
  ASSERT_EQ(::flock(own, LOCK_EX | LOCK_NB), 0);
  EXPECT_EQ(shard("1/2").status, 0);
  auto refused = shard("0/2");
  EXPECT_EQ(refused.status, 2);
  EXPECT_TRUE(contains(refused.err, "in use by another sparsescope run")) << refused.err;
  auto whole = cli({"infer", "--input", (dir_ / "in").string(), "--out", out.string()});
  EXPECT_EQ(whole.status, 2);
  EXPECT_TRUE(contains(whole.err, "in use by another sparsescope run (--shard runs)")) << whole.err;
  ::close(own);
  ::close(folder);

  for (const char* bad : {"2/2", "1", "-1/2", "a/b", "0/0", "1/"}) {
    auto r = shard(bad);
    EXPECT_EQ(r.status, 2) << bad;
    EXPECT_TRUE(contains(r.err, "--shard")) << bad << ": " << r.err;
  }
}

// infer's and eval's --cuda-graph need a CUDA device (and infer no host-side recording); usage errors
// before any work.
TEST_F(CliReliability, CudaGraphsAreRefusedWhereTheyCannotRun) {
  auto cpu = cli({"infer", "--input", kBoot.string(), "--out", (dir_ / "cpu").string(), "--cuda-graph"});
  EXPECT_EQ(cpu.status, 2);
  EXPECT_TRUE(contains(cpu.err, "--cuda-graph needs a CUDA --device, not cpu")) << cpu.err;
  EXPECT_FALSE(fs::exists(dir_ / "cpu" / "predictions.jsonl"));
  auto eval = cli({"eval", "--weights", kBundled.string(), "--dataset", "fashion-mnist:" + kSamples.string(),
                   "--cuda-graph"});
  EXPECT_EQ(eval.status, 2);
  EXPECT_TRUE(contains(eval.err, "--cuda-graph needs a CUDA --device, not cpu")) << eval.err;
  auto knn = cli({"eval", "--task", "knn", "--weights", kBundled.string(), "--dataset", kSamples.string(),
                  "--cuda-graph"});
  EXPECT_EQ(knn.status, 2);
  EXPECT_TRUE(contains(knn.err, "--cuda-graph is for --task classify")) << knn.err;
}

TEST_F(CliReliability, WeightsThatWouldGiveSilentNonsenseAreRefused) {
  const std::string name = "blocks.0.attn.qkv.weight";
  at::Tensor original;
  for (const auto& [n, t] : sparsescope::vision::load_safetensors(kBundled.string()).tensors) {
    if (n == name) original = t;
  }
  ASSERT_TRUE(original.defined());
  at::Tensor with_nan = original.to(at::kFloat).clone();
  with_nan.view(-1)[7] = NAN;
  auto nan = cli({"infer", "--input", kBoot.string(), "--out", (dir_ / "nan").string(), "--weights",
                  weights_with(name, with_nan, "nan.safetensors").string()});
  EXPECT_EQ(nan.status, 2);
  EXPECT_TRUE(contains(nan.err, "NaN or infinite values [blocks.0.attn.qkv.weight (1 of")) << nan.err;

  auto int32 = cli({"infer", "--input", kBoot.string(), "--out", (dir_ / "int32").string(), "--weights",
                    weights_with(name, original.to(at::kInt), "int32.safetensors").string()});
  EXPECT_EQ(int32.status, 2);
  EXPECT_TRUE(contains(int32.err, "non-floating dtype [blocks.0.attn.qkv.weight (checkpoint Int")) << int32.err;
}

TEST_F(CliReliability, NonRegularFilesAreRefusedWithoutHanging) {
  const fs::path fifo = dir_ / "p.png";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto infer = cli({"infer", "--input", fifo.string(), "--out", (dir_ / "out").string()});
  EXPECT_EQ(infer.status, 1);
  EXPECT_TRUE(contains(infer.err, "FIFO")) << infer.err;
  auto weights = cli({"infer", "--input", kBoot.string(), "--out", (dir_ / "w").string(), "--weights", fifo.string()});
  EXPECT_EQ(weights.status, 2);
  EXPECT_TRUE(contains(weights.err, "FIFO")) << weights.err;
  auto info = cli({"trace", "info", fifo.string()});
  EXPECT_EQ(info.status, 1);
  EXPECT_TRUE(contains(info.err, "FIFO")) << info.err;
}

TEST_F(CliReliability, ClearMessagesForHugeImagesWrongFilesAndWrongModels) {
  // A PNG header promising 20000 x 20000 pixels: refused by its size, before any decoding.
  const unsigned char header[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                  0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20, 8, 2, 0, 0, 0, 0, 0, 0, 0};
  std::ofstream(dir_ / "huge.png", std::ios::binary).write(reinterpret_cast<const char*>(header), sizeof header);
  auto huge = cli({"infer", "--input", (dir_ / "huge.png").string(), "--out", (dir_ / "out").string()});
  EXPECT_EQ(huge.status, 1);
  EXPECT_TRUE(contains(huge.err, "20000 x 20000 pixels exceeds the limit")) << huge.err;

  auto wrong = cli({"infer", "--input", kBoot.string(), "--out", (dir_ / "w").string(), "--model",
                    "vit_small_patch16_224", "--weights", kBundled.string()});
  EXPECT_EQ(wrong.status, 2);
  EXPECT_LT(wrong.err.size(), 1500u) << wrong.err;
  EXPECT_TRUE(contains(wrong.err, "more")) << wrong.err;
  EXPECT_TRUE(contains(wrong.err, "sparsescope tensors")) << wrong.err;

  auto range = cli(train_args(dir_ / "t", {"--lr", "-1"}));
  EXPECT_EQ(range.status, 2);
  EXPECT_LT(range.err.size(), 120u) << range.err;
  EXPECT_TRUE(contains(range.err, "--lr: must be positive, got -1")) << range.err;
}

TEST_F(CliReliability, TrainingDefaultsBudgetsAndDamagedCheckpoints) {
  auto short_run = cli(train_args(dir_ / "one", {"--epochs", "1"}));  // the default warmup is 5 epochs
  ASSERT_EQ(short_run.status, 0) << short_run.err;
  EXPECT_TRUE(nlohmann::json::parse(short_run.out)["finished"].get<bool>());

  auto budget = cli(train_args(dir_ / "budget", {"--epochs", "4", "--warmup-epochs", "1", "--time-budget", "1e-6"}));
  ASSERT_EQ(budget.status, 0) << budget.err;
  const auto spent = nlohmann::json::parse(budget.out);
  EXPECT_EQ(spent["epochs"], 1);  // not the three epochs it took before
  EXPECT_EQ(spent["planned_epochs"], 1);
  EXPECT_TRUE(contains(budget.err, "spent by epoch 1")) << budget.err;

  auto two = cli(train_args(dir_ / "two", {"--epochs", "4", "--warmup-epochs", "1", "--stop-after", "2"}));
  ASSERT_EQ(two.status, 0) << two.err;
  const std::string checkpoint = (dir_ / "two" / "checkpoint.safetensors").string();
  const auto file = sparsescope::vision::load_safetensors(checkpoint);
  const std::string key = "sparsescope.train_state";
  ASSERT_TRUE(file.metadata.count(key));
  const auto state = nlohmann::json::parse(file.metadata.at(key));
  auto damaged = [&](const std::string& name, const std::function<void(nlohmann::json&)>& damage) {
    nlohmann::json s = state;
    damage(s);
    auto metadata = file.metadata;
    metadata[key] = s.dump();
    const fs::path out = dir_ / name;
    fs::create_directories(out);
    sparsescope::vision::save_safetensors((out / "checkpoint.safetensors").string(), file.tensors, metadata);
    return cli(train_args(out, {"--epochs", "4", "--warmup-epochs", "1", "--stop-after", "3", "--resume"}));
  };
  const auto not_a_list = damaged("records", [](nlohmann::json& s) { s["records"] = {{"a", 1}}; });
  EXPECT_EQ(not_a_list.status, 2);
  EXPECT_TRUE(contains(not_a_list.err, "records is not a list")) << not_a_list.err;
  const auto text_epoch = damaged("epoch", [](nlohmann::json& s) { s["records"][0]["epoch"] = "one"; });
  EXPECT_EQ(text_epoch.status, 2);
  EXPECT_TRUE(contains(text_epoch.err, "malformed")) << text_epoch.err;
  const auto too_many = damaged("many", [](nlohmann::json& s) {
    for (int i = 0; i < 28; ++i) s["records"].push_back(s["records"][0]);
  });
  EXPECT_EQ(too_many.status, 2);
  EXPECT_TRUE(contains(too_many.err, "30 epochs recorded of 4 planned")) << too_many.err;
  const auto intact = damaged("intact", [](nlohmann::json&) {});
  EXPECT_EQ(intact.status, 0) << intact.err;  // the undamaged state resumes
  EXPECT_EQ(nlohmann::json::parse(intact.out)["epochs"], 3);
}

TEST_F(CliReliability, EvalBatchesAreBoundedByTheMemoryLeft) {
  if (at::hasCUDA()) GTEST_SKIP() << "an address-space limit and CUDA's reservations do not mix";
  const fs::path fmnist = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(fmnist)) GTEST_SKIP() << "Debian's dataset-fashion-mnist is not installed";
  // This process links the same libraries as the CLI: its address space plus 700 MB leaves room for
  // a few hundred of the 1,000 images at the CLI's estimate per image (770 kB), not for all.
  std::ifstream statm("/proc/self/statm");
  long long pages = 0;
  statm >> pages;
  const long long limit_kib = pages * (::sysconf(_SC_PAGESIZE) / 1024) + 700 * 1024;
  const std::string command = "ulimit -v " + std::to_string(limit_kib) + " && exec '" + std::string(SPARSESCOPE_CLI) +
                              "' eval --weights '" + kBundled.string() + "' --dataset fashion-mnist --limit 1000 --batch 65536 --json";
  auto r = run_process("/bin/sh", {"-c", command});
  ASSERT_NE(r.status, -1) << "killed by a signal: " << r.err;
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "--batch 1000 needs about")) << r.err;
  EXPECT_TRUE(contains(r.err, "so batches of")) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["images"], 1000);
}

TEST_F(CliReliability, RunningOutOfMemoryFailsTheBatchWithASummary) {
  if (at::hasCUDA()) GTEST_SKIP() << "an address-space limit and CUDA's reservations do not mix";
  // 12,545 tokens (448 / 4 squared, and the class token): one image's attention scores and
  // probabilities take 2 x 630 MB on the CPU, more than the 1.2 GB the limit below leaves.
  sparsescope::vision::ViTConfig c;
  c.name = "vit_test_12545_tokens";
  c.img_size = 448;
  c.patch_size = 4;
  c.embed_dim = 16;
  c.depth = 1;
  c.num_heads = 1;
  c.num_classes = 2;
  c.eval.img_size = 448;
  c.eval.crop_pct = 1.0;
  sparsescope::vision::VisionTransformer model(c);
  sparsescope::vision::NamedTensors weights;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) weights.emplace_back(item.key(), item.value());
  const std::string path = (dir_ / "big.safetensors").string();
  sparsescope::vision::save_safetensors(path, weights, sparsescope::vision::model_card_metadata({c, {"a", "b"}}));

  std::ifstream statm("/proc/self/statm");
  long long pages = 0;
  statm >> pages;
  const long long limit_kib = pages * (::sysconf(_SC_PAGESIZE) / 1024) + 1200 * 1024;
  const fs::path out = dir_ / "out";
  auto r = run_process("/bin/sh", {"-c", "ulimit -v " + std::to_string(limit_kib) + " && exec '" + SPARSESCOPE_CLI +
                                             "' infer --weights '" + path + "' --input '" + kBoot.string() +
                                             "' --input '" + kPullover.string() + "' --batch 3 --out '" +
                                             out.string() + "'"});
  ASSERT_NE(r.status, -1) << "killed by a signal: " << r.err;
  EXPECT_TRUE(contains(r.err, "--batch 3 needs about")) << r.err;  // lowered to what may fit...
  EXPECT_FALSE(contains(r.err, "terminate called")) << r.err;
  EXPECT_EQ(r.status, 1) << r.err;  // ... and when even one image does not fit, its batch fails
  ASSERT_TRUE(fs::exists(out / "summary.json")) << r.err;
  const auto summary = read_json(out / "summary.json");
  EXPECT_EQ(summary["failed"], 2);
  EXPECT_TRUE(contains(r.err, "out of host memory for one item")) << r.err;  // no smaller batch to advise
}

#ifdef SPARSESCOPE_TEST_VIDEO
TEST_F(CliReliability, ADamagedVideoIsAFailureThatKeepsItsFrames) {
  const fs::path clip = dir_ / "clip.avi";
  {
    cv::VideoWriter writer(clip.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0, cv::Size(64, 48));
    ASSERT_TRUE(writer.isOpened());
    for (int i = 0; i < 9; ++i) writer.write(cv::Mat(48, 64, CV_8UC3, cv::Scalar(20 * i, 100, 200 - 20 * i)));
  }
  // Zeros over the middle of the file: the container still announces 9 frames, the stream breaks.
  std::string bytes;
  {
    std::ifstream in(clip, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::fill(bytes.begin() + bytes.size() / 2, bytes.begin() + bytes.size() * 9 / 10, '\0');
  std::ofstream(dir_ / "damaged.avi", std::ios::binary) << bytes;
  auto r = cli({"infer", "--input", (dir_ / "damaged.avi").string(), "--frames-every", "1", "--out",
                (dir_ / "out").string()});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "of the 9 frames its container announces")) << r.err;
  const auto lines = predictions(dir_ / "out");
  EXPECT_GE(lines.size(), 1u);
  EXPECT_LT(lines.size(), 9u);
  EXPECT_FALSE(contains(r.err, "WARN")) << "backend noise: " << r.err;
}
#endif
