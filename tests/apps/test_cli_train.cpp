// `sparsescope train` and `sparsescope eval` as users run them, on the dataset fixtures of
// scripts/fixtures/make_dataset_fixtures.py.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sparsescope/vision/image.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/sr_data.h"
#include "sparsescope/vision/datasets.h"  // before Qt (process.h), whose `slots` macro breaks LibTorch's headers
#include "process.h"
#include "sparsescope/vision/safetensors.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using sparsescope::test::run_process;

namespace {

const fs::path kData = fs::path(SPARSESCOPE_FIXTURES_DIR) / "datasets";

class CliTrain : public sparsescope::test::TempDirTest {
 protected:
  static sparsescope::test::ProcessResult cli(const std::vector<std::string>& args) {
    return run_process(SPARSESCOPE_CLI, args);
  }
  // A tiny ViT on the 8 x 8 IDX fixture: 6 training images, 4 test images, 10 classes.
  std::vector<std::string> train_args(const fs::path& out) const {
    return {"train", "--dataset", "fashion-mnist:" + (kData / "idx").string(), "--out", out.string(),
            "--img-size", "8", "--patch-size", "4", "--embed-dim", "16", "--depth", "1", "--num-heads", "2",
            "--epochs", "3", "--batch", "3", "--warmup-epochs", "1", "--name", "tiny_fmnist", "--json"};
  }
};

nlohmann::json parse(const std::string& text) { return nlohmann::json::parse(text); }

}  // namespace

TEST_F(CliTrain, TrainsEvaluatesAndResumes) {
  auto whole = cli(train_args(dir_ / "whole"));
  ASSERT_EQ(whole.status, 0) << whole.err;
  const auto summary = parse(whole.out);
  EXPECT_EQ(summary["epochs"], 3);
  EXPECT_TRUE(summary["finished"].get<bool>());
  EXPECT_EQ(summary["name"], "tiny_fmnist");
  EXPECT_NE(whole.err.find("epoch 3/3"), std::string::npos) << whole.err;
  std::ifstream log_in(dir_ / "whole" / "log.json");
  const auto log = nlohmann::json::parse(log_in);
  EXPECT_EQ(log["epochs"].size(), 3u);
  EXPECT_EQ(log["model"]["in_chans"], 1);
  EXPECT_EQ(log["model"]["classes"][0], "T-shirt/top");
  EXPECT_NE(log["command"].get<std::string>().find("--embed-dim 16"), std::string::npos) << log["command"];

  // eval needs no --model: the weights carry their model card. Same numbers as the last epoch.
  const std::string weights = (dir_ / "whole" / "model.safetensors").string();
  auto eval = cli({"eval", "--weights", weights, "--dataset", "fashion-mnist:" + (kData / "idx").string(), "--json"});
  ASSERT_EQ(eval.status, 0) << eval.err;
  const auto e = parse(eval.out);
  EXPECT_EQ(e["images"], 4);
  EXPECT_EQ(e["model"], "tiny_fmnist");
  EXPECT_DOUBLE_EQ(e["top1"].get<double>(), log["epochs"][2]["eval_top1"].get<double>());
  EXPECT_DOUBLE_EQ(e["top5"].get<double>(), log["epochs"][2]["eval_top5"].get<double>());
  auto human = cli({"eval", "--weights", weights, "--dataset", "fashion-mnist:" + (kData / "idx").string(),
                    "--split", "train"});
  ASSERT_EQ(human.status, 0) << human.err;
  EXPECT_NE(human.out.find("top-1"), std::string::npos);
  EXPECT_NE(human.out.find("6 images"), std::string::npos) << human.out;

  // Interrupted after epoch 1, then resumed: the same model as the uninterrupted run.
  auto args = train_args(dir_ / "part");
  args.insert(args.end(), {"--stop-after", "1"});
  auto first = cli(args);
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_FALSE(parse(first.out)["finished"].get<bool>());
  args = train_args(dir_ / "part");
  args.push_back("--resume");
  auto rest = cli(args);
  ASSERT_EQ(rest.status, 0) << rest.err;
  EXPECT_TRUE(parse(rest.out)["finished"].get<bool>());
  const auto a = sparsescope::vision::load_safetensors(weights).tensors;
  const auto b = sparsescope::vision::load_safetensors((dir_ / "part" / "model.safetensors").string()).tensors;
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].second.equal(b[i].second)) << a[i].first;

  // A finished run's folder is not overwritten by accident.
  auto again = cli(train_args(dir_ / "whole"));
  EXPECT_EQ(again.status, 2);
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
}

// --profile-steps: the PyTorch profiler's Chrome trace of the first epoch's last steps (the whole
// epoch when it is shorter), a summary on stderr, and the same model as an unprofiled run.
TEST_F(CliTrain, ProfilesTheLastStepsOfTheFirstEpoch) {
  auto plain = cli(train_args(dir_ / "plain"));
  ASSERT_EQ(plain.status, 0) << plain.err;
  for (const auto& [steps, seen] : {std::pair{"1", "profile: 1 steps"}, std::pair{"5", "profile: 2 steps"}}) {
    SCOPED_TRACE(steps);
    const fs::path out = dir_ / (std::string("profiled") + steps);
    auto args = train_args(out);
    args.insert(args.end(), {"--profile-steps", steps});
    auto profiled = cli(args);
    ASSERT_EQ(profiled.status, 0) << profiled.err;
    EXPECT_NE(profiled.err.find(seen), std::string::npos) << profiled.err;
    std::ifstream trace_in(out / "profile.trace.json");
    ASSERT_TRUE(trace_in) << out / "profile.trace.json";
    const auto trace = nlohmann::json::parse(trace_in);
    const auto& events = trace.at("traceEvents");
    EXPECT_TRUE(std::any_of(events.begin(), events.end(), [](const nlohmann::json& e) {
      return e.value("name", "") == "aten::addmm";  // the ViT's linear layers
    }));
    const auto a = sparsescope::vision::load_safetensors((dir_ / "plain" / "model.safetensors").string()).tensors;
    const auto b = sparsescope::vision::load_safetensors((out / "model.safetensors").string()).tensors;
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].second.equal(b[i].second)) << a[i].first;
  }
}

TEST_F(CliTrain, ImageFolderEvalReportsBadImagesAndGoesOn) {
  auto trained = cli({"train", "--dataset", (kData / "folder").string(), "--out", (dir_ / "run").string(),
                      "--img-size", "16", "--patch-size", "8", "--embed-dim", "16", "--depth", "1", "--num-heads",
                      "2", "--epochs", "2", "--batch", "4", "--warmup-epochs", "0", "--json"});
  ASSERT_EQ(trained.status, 0) << trained.err;
  fs::copy(kData / "folder" / "val", dir_ / "val", fs::copy_options::recursive);
  std::ofstream(dir_ / "val" / "circle" / "broken.png") << "not a png";
  auto eval = cli({"eval", "--weights", (dir_ / "run" / "model.safetensors").string(), "--dataset",
                   (dir_ / "val").string(), "--json"});
  EXPECT_EQ(eval.status, 1) << eval.err;
  const auto e = parse(eval.out);
  EXPECT_EQ(e["images"], 4);
  EXPECT_EQ(e["failed"], 1);
  EXPECT_NE(eval.err.find("broken.png"), std::string::npos) << eval.err;
}

TEST_F(CliTrain, UsageErrorsExitTwoWithOneLine) {
  // A weights file without a model card (plain safetensors) needs --model.
  const std::string bare = (dir_ / "bare.safetensors").string();
  sparsescope::vision::save_safetensors(bare, {{"w", at::zeros({2})}});
  const std::string idx = "fashion-mnist:" + (kData / "idx").string();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"eval", "--weights", bare, "--dataset", idx},
        {"eval", "--weights", bare, "--dataset", idx, "--method", "sparsifiner"},
        {"eval", "--weights", (dir_ / "missing.safetensors").string(), "--dataset", idx},
        {"train", "--dataset", (dir_ / "no-such-folder").string(), "--out", (dir_ / "o").string()},
        {"train", "--dataset", idx, "--out", (dir_ / "o").string(), "--amp", "fp8"},
        {"train", "--dataset", idx, "--out", (dir_ / "o").string(), "--patch-size", "5"},
        {"train", "--dataset", idx, "--out", (dir_ / "o").string(), "--method", "sparsifiner"},
        {"train", "--dataset", idx, "--out", (dir_ / "o").string(), "--teacher", bare},
        // Task options are typed by their defaults and checked by the task.
        {"train", "--dataset", idx, "--out", (dir_ / "o").string(), "--pad", "two"},
        {"train", "--dataset", idx, "--out", (dir_ / "o").string(), "--mean", "0.5"},
        {"train", "--dataset", idx, "--out", (dir_ / "o").string(), "--crop-scale", "0.5", "2"},
        {"train", "--dataset", idx, "--out", (dir_ / "o").string(), "--method", "sparsifiner", "--teacher", bare,
         "--patch-size", "4"}}) {
    auto r = cli(args);
    EXPECT_EQ(r.status, 2) << args[1] << " " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  auto no_card = cli({"eval", "--weights", bare, "--dataset", idx});
  EXPECT_NE(no_card.err.find("--model"), std::string::npos) << no_card.err;
  auto no_teacher = cli({"train", "--dataset", idx, "--out", (dir_ / "o").string(), "--method", "sparsifiner"});
  EXPECT_NE(no_teacher.err.find("--teacher"), std::string::npos) << no_teacher.err;
  EXPECT_FALSE(fs::exists(dir_ / "o"));
}

// A Sparsifiner student of a tiny dense teacher on the IDX fixture: both phases, resumable, and its
// weights carry the method (eval runs it without --method).
TEST_F(CliTrain, TrainsASparsifinerStudentAndResumes) {
  auto teacher = cli(train_args(dir_ / "teacher"));
  ASSERT_EQ(teacher.status, 0) << teacher.err;
  const std::string teacher_weights = (dir_ / "teacher" / "model.safetensors").string();
  auto student_args = [&](const fs::path& out) {
    return std::vector<std::string>{"train", "--method", "sparsifiner", "--teacher", teacher_weights, "--dataset",
                                    "fashion-mnist:" + (kData / "idx").string(), "--out", out.string(),
                                    "--epochs", "3", "--batch", "3", "--warmup-epochs", "1",
                                    "--reconstruct-epochs", "2", "--keep-rate", "0.5", "--reduce-n", "1", "--json"};
  };
  auto whole = cli(student_args(dir_ / "whole"));
  ASSERT_EQ(whole.status, 0) << whole.err;
  EXPECT_TRUE(parse(whole.out)["finished"].get<bool>());
  EXPECT_NE(whole.err.find("phase 1 of 2"), std::string::npos) << whole.err;
  EXPECT_NE(whole.err.find("phase 2 of 2"), std::string::npos) << whole.err;
  std::ifstream log_in(dir_ / "whole" / "log.json");
  const auto log = nlohmann::json::parse(log_in);
  EXPECT_DOUBLE_EQ(log["model"]["sparsifiner"]["keep_rate"].get<double>(), 0.5);

  // Stopped in phase 2 and resumed: the same student as the uninterrupted run.
  auto args = student_args(dir_ / "part");
  args.insert(args.end(), {"--stop-after", "1"});
  auto first = cli(args);
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_FALSE(parse(first.out)["finished"].get<bool>());
  args = student_args(dir_ / "part");
  args.push_back("--resume");
  auto rest = cli(args);
  ASSERT_EQ(rest.status, 0) << rest.err;
  EXPECT_TRUE(parse(rest.out)["finished"].get<bool>());
  const std::string weights = (dir_ / "whole" / "model.safetensors").string();
  const auto a = sparsescope::vision::load_safetensors(weights).tensors;
  const auto b = sparsescope::vision::load_safetensors((dir_ / "part" / "model.safetensors").string()).tensors;
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].second.equal(b[i].second)) << a[i].first;

  auto eval = cli({"eval", "--weights", weights, "--dataset", "fashion-mnist:" + (kData / "idx").string(),
                   "--recall-against", teacher_weights, "--json"});
  ASSERT_EQ(eval.status, 0) << eval.err;
  const auto e = parse(eval.out);
  EXPECT_EQ(e["method"], "sparsifiner");
  ASSERT_EQ(e["mask_recall"].size(), 1u);  // one block
  EXPECT_GT(e["mhsa_flops"]["predictor"].get<double>(), 0.0);
  auto dense = cli({"eval", "--weights", weights, "--dataset", "fashion-mnist:" + (kData / "idx").string(),
                    "--method", "dense", "--json"});
  ASSERT_EQ(dense.status, 0) << dense.err;
  EXPECT_EQ(parse(dense.out)["method"], "dense");
  EXPECT_EQ(parse(dense.out)["mhsa_flops"]["predictor"].get<double>(), 0.0);
  // Recall measures Sparsifiner's masks: with --method dense there are none.
  auto no_masks = cli({"eval", "--weights", weights, "--dataset", "fashion-mnist:" + (kData / "idx").string(),
                       "--method", "dense", "--recall-against", teacher_weights});
  EXPECT_EQ(no_masks.status, 2);
  EXPECT_NE(no_masks.err.find("--recall-against"), std::string::npos) << no_masks.err;
}

// The bundled Sparsifiner model on the real test split (Debian's dataset-fashion-mnist).
TEST_F(CliTrain, EvalOfTheBundledSparsifinerModelReportsFlopsAndMaskRecall) {
  if (!fs::exists(fs::path(sparsescope::vision::kFashionMnistDir) / "t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  }
  const fs::path models = fs::path(SPARSESCOPE_SAMPLES_DIR).parent_path() / "models";  // assets/models
  auto r = cli({"eval", "--weights", (models / "sparsifiner_fmnist_k25.safetensors").string(), "--dataset",
                "fashion-mnist", "--limit", "64", "--recall-against", (models / "vit_fmnist.safetensors").string(),
                "--recall-images", "32", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto e = parse(r.out);
  EXPECT_EQ(e["method"], "sparsifiner");
  EXPECT_EQ(e["images"], 64);
  ASSERT_EQ(e["mask_recall"].size(), 9u);  // one per block
  for (const auto& recall : e["mask_recall"]) {
    EXPECT_GT(recall.get<double>(), 0.0);
    EXPECT_LT(recall.get<double>(), 1.0);
  }
  const auto& sparse = e["mhsa_flops"];
  const auto& dense = e["dense_mhsa_flops"];
  EXPECT_GT(sparse["predictor"].get<double>(), 0.0);
  EXPECT_EQ(dense["predictor"].get<double>(), 0.0);
  EXPECT_EQ(sparse["projections"], dense["projections"]);
  // Attention over 13 of 50 keys per patch query, the class token's row dense.
  EXPECT_NEAR(sparse["attention"].get<double>() / dense["attention"].get<double>(), (50.0 + 49.0 * 13.0) / 2500.0,
              1e-9);
}

// Super-resolution: `train --task sr` takes the official recipe as its defaults (a flag given wins),
// and `eval --task sr` scores the weights it wrote, card and all, beside bicubic.
TEST_F(CliTrain, TrainsAndEvaluatesSuperResolution) {
  fs::create_directories(dir_ / "hr");
  fs::create_directories(dir_ / "lr");  // the LR the harness makes, as files for `sr`
  for (int i = 0; i < 3; ++i) {
    at::Tensor pixels = (at::arange(40 * 32 * 3, at::kLong).view({32, 40, 3}) * (7 + i) % 251).to(at::kByte);
    const std::string file = std::to_string(i) + ".png";
    sparsescope::vision::write_png((dir_ / "hr" / file).string(), sparsescope::vision::tensor_to_image(pixels));
    const at::Tensor lr = sparsescope::vision::bicubic_lr(pixels.permute({2, 0, 1}).contiguous(), 4);
    sparsescope::vision::write_png((dir_ / "lr" / file).string(),
                                   sparsescope::vision::tensor_to_image(lr.permute({1, 2, 0}).contiguous()));
  }
  const std::string hr = (dir_ / "hr").string();
  auto train = cli({"train", "--task", "sr", "--model", "dlgsanet_tiny_x4", "--dataset", hr, "--eval-dataset", hr,
                    "--patch", "16", "--epochs", "2", "--batch", "3", "--clip-grad", "0.5", "--out",
                    (dir_ / "sr").string(), "--json"});
  ASSERT_EQ(train.status, 0) << train.err;
  EXPECT_EQ(parse(train.out)["name"], "dlgsanet_tiny_x4");
  std::ifstream log_in(dir_ / "sr" / "log.json");
  const auto options = nlohmann::json::parse(log_in)["options"];
  EXPECT_DOUBLE_EQ(options["lr"].get<double>(), 5e-4);
  EXPECT_DOUBLE_EQ(options["weight_decay"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(options["warmup_epochs"].get<double>(), 0.0);
  EXPECT_EQ(options["lr_milestones"], nlohmann::json::parse("[0.5, 0.8, 0.9, 0.95]"));
  EXPECT_DOUBLE_EQ(options["clip_grad"].get<double>(), 0.5);  // given
  EXPECT_EQ(options["batch"], 3);

  auto eval = cli({"eval", "--task", "sr", "--weights", (dir_ / "sr" / "model.safetensors").string(), "--dataset", hr,
                   "--scale", "4", "--json"});
  ASSERT_EQ(eval.status, 0) << eval.err;
  const auto e = parse(eval.out);
  EXPECT_EQ(e["images"], 3);
  EXPECT_EQ(e["scale"], 4);
  EXPECT_EQ(e["per_image"].size(), 3u);
  EXPECT_GT(e["bicubic_psnr"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(e["psnr"].get<double>(), parse(train.out)["eval_psnr"].get<double>());
  // `sr` writes what eval scored; scored as images made elsewhere (--sr-images), they read the same.
  auto upscaled = cli({"sr", (dir_ / "lr").string(), "--out", (dir_ / "upscaled").string(), "--tile", "0", "--weights",
                       (dir_ / "sr" / "model.safetensors").string()});
  ASSERT_EQ(upscaled.status, 0) << upscaled.err;
  auto images = cli({"eval", "--task", "sr", "--sr-images", (dir_ / "upscaled").string(), "--dataset", hr, "--scale", "4",
                     "--json"});
  ASSERT_EQ(images.status, 0) << images.err;
  EXPECT_DOUBLE_EQ(parse(images.out)["psnr"].get<double>(), e["psnr"].get<double>());
  EXPECT_EQ(cli({"eval", "--task", "sr", "--sr-images", (dir_ / "upscaled").string(), "--dataset", hr}).status, 2);
  auto wrong_scale = cli({"eval", "--task", "sr", "--weights", (dir_ / "sr" / "model.safetensors").string(),
                          "--dataset", hr, "--scale", "2"});
  EXPECT_EQ(wrong_scale.status, 2);
  EXPECT_NE(wrong_scale.err.find("upscales x4"), std::string::npos) << wrong_scale.err;
}
