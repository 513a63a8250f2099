#include "eval_encoder.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <functional>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "batch.h"
#include "progress.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/knn.h"
#include "sparsescope/vision/linear_probe.h"
#include "sparsescope/vision/mae_reconstruct.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/model_spec.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/state_dict.h"
#include "sparsescope/vision/vit.h"
#include "sparsescope/vision/vit_input.h"

namespace sparsescope::cli {

namespace sv = vision;

namespace {

// An encoder as the evaluations see it: normalised images [B, C, S, S] -> one feature per image [B, D].
struct Encoder {
  std::string name;
  sv::ViTConfig config;  // the input geometry and normalisation
  std::function<at::Tensor(const at::Tensor&)> features;
};

bool is_mae(const EncoderEvalRequest& r) {
  if (!r.model.empty()) {
    const auto names = sv::mae_config_names();
    return std::find(names.begin(), names.end(), r.model) != names.end();
  }
  if (sv::is_torch_save(r.weights)) return false;
  return sv::load_safetensors(r.weights).metadata.count(sv::kMaeCardKey) > 0;
}

// MAE or MAE-LUT pretraining weights: the encoder's class token over every patch, after its norm
// (as pretraining's own k-NN measures it); anything else a ViT: its class token after the final
// norm (for global-pool models the mean of the last block's patch tokens, before fc_norm).
Encoder load_encoder(const EncoderEvalRequest& r, at::Device device) {
  Encoder e;
  if (is_mae(r)) {
    sv::MaskedAutoencoder mae = sv::load_mae(r.weights, r.model);
    mae->to(device);
    e.name = mae->config().name;
    e.config = sv::mae_encoder_config(mae->config());  // images at the model's size
    e.features = [mae](const at::Tensor& x) mutable { return mae->forward_encoder(x, {}).select(1, 0); };
    return e;
  }
  sv::LoadedViT vit = sv::load_vit(r.weights, r.model);
  vit.model->to(device);
  vit.model->eval();
  e.name = vit.model->config().name;
  e.config = vit.model->config();
  const bool pool = e.config.global_pool;
  const int64_t prefix = e.config.prefix_tokens();
  e.features = [model = vit.model, pool, prefix](const at::Tensor& x) mutable {
    const at::Tensor tokens = model->forward_features(x);
    return pool ? tokens.narrow(1, prefix, tokens.size(1) - prefix).mean(1) : tokens.select(1, 0);
  };
  return e;
}

at::Tensor features_of(Encoder& e, const sv::ImageDataset& data, int64_t batch, at::Device device, ProgressBar& bar) {
  std::vector<at::Tensor> out;
  for (int64_t begin = 0; begin < data.size(); begin += batch) {
    const int64_t count = std::min(batch, data.size() - begin);
    const at::Tensor x = sv::normalize_pixels(data.images.narrow(0, begin, count).to(device), e.config.eval);
    out.push_back(e.features(x).to(at::kFloat).cpu());
    bar.advance(static_cast<size_t>(count));
  }
  return at::cat(out);
}

}  // namespace

int run_encoder_eval(const EncoderEvalRequest& r) {
  const bool knn = r.task == "knn";
  SPARSESCOPE_CHECK(knn || r.task == "linear-probe", "--task ", r.task, " is not an encoder evaluation");
  SPARSESCOPE_CHECK(!r.weights.empty(), "--weights is required");
  SPARSESCOPE_CHECK(r.k >= 1, "--knn-k must be at least 1, got ", r.k);
  const at::Device device = sv::parse_device(r.device, "--device");
  Encoder encoder{};
  try {
    encoder = load_encoder(r, device);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--weights: ", e.what());
  }
  const sv::DatasetSpec spec = sv::parse_dataset_spec(r.dataset);
  SPARSESCOPE_CHECK(sv::has_split(spec, sv::Split::Test), "--dataset '", r.dataset, "': ",
                    knn ? "k-NN needs a training split as the memory bank" : "a linear probe needs a training split to fit",
                    " and a test split (DIR/train and DIR/test)");
  const sv::ImageDataset train = sv::load_dataset(spec, sv::Split::Train, encoder.config, {}, r.limit);
  const sv::ImageDataset test = sv::load_dataset(spec, sv::Split::Test, encoder.config, train.classes, r.limit);
  nlohmann::json failures = nlohmann::json::array();
  for (const auto* d : {&train, &test}) {
    for (const auto& [file, reason] : d->failures) {
      std::cerr << "failed: " << file << ": " << reason << "\n";
      failures.push_back({{"input", file}, {"error", reason}});
    }
  }
  at::Tensor bank, queries;
  {
    at::NoGradGuard no_grad;
    ProgressBar bar(knn ? "knn" : "features", static_cast<size_t>(train.size() + test.size()));
    bank = features_of(encoder, train, r.batch, device, bar);
    queries = features_of(encoder, test, r.batch, device, bar);
  }
  const auto classes = static_cast<int64_t>(train.classes.size());
  nlohmann::json summary = {{"model", encoder.name},      {"weights", printable(r.weights)},
                            {"dataset", test.source},     {"train_images", train.size()},
                            {"test_images", test.size()}, {"failed", failures.size()},
                            {"failures", failures}};
  std::cout << std::fixed << std::setprecision(2);
  if (knn) {
    const double top1 = sv::knn_top1(bank, train.labels, queries, test.labels, classes, r.k, r.temperature);
    summary.update({{"k", r.k}, {"temperature", r.temperature}, {"knn_top1", top1}});
    if (!r.json)
      std::cout << encoder.name << ": " << r.k << "-NN top-1 " << 100.0 * top1 << "% on " << test.size()
                << " test images (" << train.size() << " training images as the bank)\n";
  } else {
    // Fitted on the evaluation's device.
    const sv::LinearProbeResult p = sv::linear_probe(bank.to(device), train.labels, queries.to(device), test.labels,
                                                     classes, {r.probe_l2, r.probe_iterations});
    summary.update({{"l2", r.probe_l2}, {"iterations", p.iterations}, {"loss", p.loss},
                    {"train_top1", p.train_top1}, {"linear_probe_top1", p.test_top1}});
    if (!r.json)
      std::cout << encoder.name << ": linear probe top-1 " << 100.0 * p.test_top1 << "% on " << test.size()
                << " test images (fitted on " << train.size() << ", training top-1 " << 100.0 * p.train_top1
                << "%, L2 " << std::setprecision(6) << r.probe_l2 << ", " << p.iterations << " L-BFGS iterations)\n";
  }
  if (r.json) std::cout << summary.dump(2) << "\n";
  return failures.empty() ? 0 : 1;
}

}  // namespace sparsescope::cli
