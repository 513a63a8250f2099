// sparsescope eval: top-1 / top-5 accuracy and throughput of a classifier on a labelled dataset,
// so that anyone can check a claimed number with the weights file alone.
#include <ATen/Context.h>
#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "number_checks.h"
#include "batch.h"
#include "commands.h"
#include "eval_clip.h"
#include "eval_encoder.h"
#include "eval_sr.h"
#include "progress.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/evaluate.h"
#include "sparsescope/vision/attention_method.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/model_spec.h"
#include "sparsescope/vision/registry.h"

namespace sparsescope::cli {

namespace {

namespace sv = vision;

struct EvalCommandOptions {
  std::string task = "classify";
  std::string vocab;
  int64_t scale = 0;
  std::string sr_images;
  std::string weights;
  std::string model;
  std::string dataset;
  std::string split = "test";
  std::string method;  // default: the model's own
  std::string recall_against;
  int64_t recall_images = 1000;
  int64_t batch = 256;
  int64_t limit = 0;
  std::string device = "cpu";
  std::string dtype = "fp32";
  bool cuda_graph = false;
  int64_t knn_k = 20;
  double knn_temperature = 0.07;
  double probe_l2 = 1e-4;
  int64_t probe_iterations = 1000;
  bool json = false;
};

int run_eval(const EvalCommandOptions& o) {
  SPARSESCOPE_CHECK(!o.cuda_graph || o.task == "classify" || o.task == "classification",
                    "--cuda-graph is for --task classify");
  if (o.task == "sr") {
    return run_sr_eval({o.weights, o.sr_images, o.model, o.dataset, o.scale, o.limit, o.device, o.dtype, o.json});
  }
  if (o.task == "retrieval" || o.task == "zero-shot") {
    const bool retrieval = o.task == "retrieval";
    return run_clip_eval({o.weights, o.model, retrieval ? o.dataset : "", retrieval ? "" : o.dataset, o.vocab, o.limit,
                          o.batch, o.device, o.json});
  }
  if (o.task == "knn" || o.task == "linear-probe") {
    return run_encoder_eval({o.task, o.weights, o.model, o.dataset, o.knn_k, o.knn_temperature, o.probe_l2,
                             o.probe_iterations, o.limit, o.batch, o.device, o.json});
  }
  SPARSESCOPE_CHECK(o.vocab.empty(), "--vocab is for --task retrieval and zero-shot");
  SPARSESCOPE_CHECK(!o.weights.empty(), "--weights is required");
  SPARSESCOPE_CHECK(o.sr_images.empty(), "--sr-images is for --task sr");
  sv::ModelSpecNames names;
  names.weights = o.model.empty() ? "--weights" : "--model/--weights";
  sv::LoadedModel loaded = sv::load_model({o.model, o.weights, o.method, o.device, o.dtype}, names);
  SPARSESCOPE_CHECK(!o.cuda_graph || loaded.device.is_cuda(), "--cuda-graph needs a CUDA --device, not ", o.device);
  const sv::ViTConfig& config = loaded.model->config();
  const std::string& method = loaded.method;
  SPARSESCOPE_CHECK(o.recall_against.empty() || method != sv::kDensePolicy,
                    "--recall-against measures the keys a sparse method keeps; --method is ", method);
  SPARSESCOPE_CHECK(config.num_classes > 0, "--weights: ", config.name, " has no classification head to evaluate");
  const sv::DatasetSpec spec = sv::parse_dataset_spec(o.dataset);
  const sv::Split split = o.split == "train" ? sv::Split::Train : sv::Split::Test;
  const sv::ImageDataset data = sv::load_dataset(spec, split, config, loaded.classes, o.limit);
  for (const auto& [file, reason] : data.failures) std::cerr << "failed: " << file << ": " << reason << "\n";

  sv::EvalResult result;
  {
    ProgressBar bar("eval", static_cast<size_t>(data.size()));
    sv::EvalOptions options;
    options.cuda_graph = o.cuda_graph;
    options.batch = fit_batch(std::min<int64_t>(o.batch, data.size()),
                              sv::inference_bytes_per_image(config, at::elementSize(loaded.dtype)), o.device, "--batch");
    options.on_batch = [&bar](int64_t images) { bar.advance(static_cast<size_t>(images)); };
    try {
      result = sv::evaluate(loaded.model, data, options);
    } catch (const std::exception& e) {
      std::cerr << "sparsescope eval: " << batch_failure(e, static_cast<size_t>(options.batch), o.device) << "\n";
      return 1;
    }
  }
  auto flops_json = [](const sv::MhsaFlops& f) {
    return nlohmann::json{{"projections", f.projections}, {"attention", f.attention}, {"predictor", f.predictor},
                          {"total", f.total()}};
  };
  const sv::MhsaFlops flops = sv::mhsa_flops(loaded.model, method == sv::kDensePolicy);
  const sv::MhsaFlops dense_flops = sv::mhsa_flops(loaded.model, /*dense=*/true);
  std::vector<double> recall;
  if (!o.recall_against.empty()) {
    sv::LoadedViT dense;
    try {
      dense = sv::load_vit(o.recall_against);
    } catch (const Error& e) {
      SPARSESCOPE_FAIL("--recall-against: ", e.what());
    }
    dense.model->to(loaded.device, loaded.dtype);
    recall = sv::mask_recall(loaded.model, dense.model, data, o.recall_images, o.batch);
  }
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& [file, reason] : data.failures) failures.push_back({{"input", file}, {"error", reason}});
  nlohmann::json summary = {{"model", config.name},
                            {"weights", printable(o.weights)},
                            {"dataset", data.source},
                            {"method", method},
                            {"images", result.images},
                            {"top1", result.top1},
                            {"top5", result.top5},
                            {"loss", result.loss},
                            {"seconds", result.seconds},
                            {"images_per_second", result.images_per_second()},
                            {"device", o.device},
                            {"dtype", o.dtype},
                            {"failed", failures.size()},
                            {"failures", failures},
                            {"mhsa_flops", flops_json(flops)},
                            {"dense_mhsa_flops", flops_json(dense_flops)}};
  if (!recall.empty()) summary["mask_recall"] = recall;
  if (o.json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    std::cout << std::fixed << std::setprecision(2) << config.name << " on " << data.source << " (" << result.images
              << " images): top-1 " << 100.0 * result.top1 << "%  top-5 " << 100.0 * result.top5 << "%  loss "
              << std::setprecision(4) << result.loss << "  " << std::setprecision(1) << result.images_per_second()
              << " images/s (" << o.device << ", " << o.dtype << ", " << method << ")\n";
    std::cout << std::setprecision(2) << "MHSA: " << flops.total() / 1e6 << " M multiply-adds per image (dense "
              << dense_flops.total() / 1e6 << " M; attention " << flops.attention / 1e6 << " M, predictor "
              << flops.predictor / 1e6 << " M, projections " << flops.projections / 1e6 << " M)\n";
    if (!recall.empty()) {
      std::cout << "mask recall per block against " << o.recall_against << ":";
      for (const double r : recall) std::cout << " " << std::setprecision(3) << r;
      std::cout << "\n";
    }
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace

Command add_eval_command(CLI::App& app) {
  auto opt = std::make_shared<EvalCommandOptions>();
  auto* cmd = app.add_subcommand("eval", "Top-1/top-5 accuracy and images/s of a classifier on a labelled dataset, "
                                         "PSNR/SSIM of super-resolution weights (--task sr), or CLIP's retrieval and "
                                         "zero-shot accuracy (--task retrieval, zero-shot)");
  cmd->footer(
      "Examples:\n"
      "  sparsescope eval --weights assets/models/vit_fmnist.safetensors --dataset fashion-mnist\n"
      "  sparsescope eval --model deit_tiny_patch16_224 --weights deit.pth --dataset val/ --device cuda --dtype bf16 --json\n"
      "  sparsescope eval --task sr --weights dlgsanet_light_x4.safetensors --dataset ../shared/data/sr/Set5 --scale 4\n"
      "SR (--task sr): PSNR and SSIM on Y of BT.601 with the scale's border cropped, as BasicSR measures them, beside\n"
      "MATLAB-bicubic upscaling; --dataset a set as SelfExSR ships it (Set5, Set14, BSD100: DIR/image_SRF_<scale>/*_HR,\n"
      "*_LR) or a folder of HR images (LR made by MATLAB's bicubic); --weights ours (with a card) or BasicSR's .pth with\n"
      "--model dlgsanet_light_x4 ...; --sr-images DIR --scale S scores SR images made by other code in the same harness.\n"
      "  sparsescope eval --task retrieval --weights clip.safetensors --dataset val.tsv\n"
      "  sparsescope eval --task zero-shot --weights clip.safetensors --dataset cifar10/test\n"
      "CLIP: --task retrieval, image<->text R@1/5/10 and mean rank on image-text pairs (--dataset: tab-separated,\n"
      "columns filepath and title); --task zero-shot, top-1 with OpenAI's CIFAR-10 prompts on class folders.\n"
      "  sparsescope eval --task knn --weights pre/model.safetensors --dataset cifar10/    # MAE / MAE-LUT pretraining\n"
      "  sparsescope eval --task linear-probe --weights pre/model.safetensors --dataset cifar10/ --device cuda\n"
      "k-NN (--task knn): the weighted 20-NN top-1 of DINO's eval_knn.py, the training split's features as the bank\n"
      "and the test split's as queries: an MAE encoder's class token over all patches, or a ViT's class token.\n"
      "Linear probe (--task linear-probe): the same features, standardised, classified by a multinomial logistic\n"
      "regression with an L2 penalty (--probe-l2) fitted by L-BFGS on the training split (CLIP's protocol).\n"
      "--task classification is --task classify.\n"
      "Datasets as for `sparsescope train`: the test split of fashion-mnist[:DIR], or an image folder\n"
      "DIR/<class>/<image> (DIR/val or DIR/test when present). --model may be left out when the weights\n"
      "carry a model card (models trained by `sparsescope train`). Unreadable images are reported and\n"
      "skipped (exit status 1); 2 for usage errors.");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--task", opt->task,
                  "classify (or classification), sr (super-resolution), retrieval or zero-shot (CLIP), knn or "
                  "linear-probe (encoders)")
      ->check(CLI::IsMember({"classify", "classification", "sr", "retrieval", "zero-shot", "knn", "linear-probe"}));
  cmd->add_option("--knn-k", opt->knn_k, "--task knn: neighbours")->check(kPositive);
  cmd->add_option("--knn-temperature", opt->knn_temperature, "--task knn: the votes' temperature")->check(kPositive);
  cmd->add_option("--probe-l2", opt->probe_l2, "--task linear-probe: the L2 penalty on the weights")
      ->check(kNonNegative);
  cmd->add_option("--probe-iterations", opt->probe_iterations, "--task linear-probe: L-BFGS iterations at most")
      ->check(kPositive);
  cmd->add_option("--vocab", opt->vocab, "CLIP: bpe_simple_vocab_16e6.txt.gz (default: $SPARSESCOPE_CLIP_VOCAB or ../shared/data/clip)");
  cmd->add_option("--scale", opt->scale, "--task sr: the scale, checked against the model's (default: the model's)")
      ->check(kNonNegative);
  cmd->add_option("--weights", opt->weights, "Weights: safetensors or .pth with timm's parameter names (required but "
                                             "for --task sr --sr-images)");
  cmd->add_option("--sr-images", opt->sr_images, "--task sr: score these SR images (named as the HR files) instead of a model");
  cmd->add_option("--model", opt->model, "Model name (default: the model card in the weights)");
  cmd->add_option("--dataset", opt->dataset, "fashion-mnist, fashion-mnist:DIR, or an image folder")->required();
  cmd->add_option("--split", opt->split, "Split of the dataset")->check(CLI::IsMember({"test", "train"}));
  cmd->add_option("--method", opt->method, "Attention method (default: the one the weights were trained for)")
      ->check(CLI::IsMember(sv::attention_policy_names()));
  cmd->add_option("--recall-against", opt->recall_against,
                  "Sparse methods: also measure mask recall per block against this dense model's attention");
  cmd->add_option("--recall-images", opt->recall_images, "Images for --recall-against")->check(kPositive);
  cmd->add_option("--batch", opt->batch, "Images per forward pass")->check(CLI::Range(1, 65536));
  cmd->add_option("--limit", opt->limit, "Evaluate the first N images only")->check(kNonNegative);
  cmd->add_flag("--cuda-graph", opt->cuda_graph,
                "--task classify on CUDA: replay full batches' forward from a CUDA graph captured once");
  cmd->add_option("--device", opt->device, "cpu, cuda or cuda:N");
  cmd->add_option("--dtype", opt->dtype, "Compute dtype")->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  cmd->add_flag("--json", opt->json, "Print the result as JSON on stdout");
  return [opt] { return run_eval(*opt); };
}

}  // namespace sparsescope::cli
