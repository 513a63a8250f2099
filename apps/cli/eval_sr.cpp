#include "eval_sr.h"

#include <ATen/ATen.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "batch.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/model_spec.h"
#include "sparsescope/vision/sr_data.h"
#include "sparsescope/vision/sr_eval.h"
#include "sparsescope/vision/sr_model.h"
#include "sparsescope/vision/utf8.h"

namespace sparsescope::cli {

namespace sv = vision;
namespace fs = std::filesystem;

namespace {

// The SR images of another method: <dir>/<HR file name> for each pair (PNG, any decodable format),
// as evaluate_sr asks for them: once per pair, in order.
sv::Upscaler saved_images(const sv::SrDataset& data, const std::string& dir) {
  auto next = std::make_shared<std::size_t>(0);
  return [&data, dir, next](const at::Tensor&) {
    const sv::SrPair& pair = data.pairs.at((*next)++);
    const std::string path = (fs::path(dir) / fs::path(pair.name).filename()).string();
    return sv::image_to_tensor(sv::read_image(path)).permute({2, 0, 1}).to(at::kFloat).div(255);
  };
}

}  // namespace

int run_sr_eval(const SrEvalRequest& o) {
  SPARSESCOPE_CHECK(o.weights.empty() != o.sr_images.empty(), "--task sr: give --weights (a model to run) or "
                    "--sr-images (SR images made elsewhere), not both");
  const at::Device device = sv::parse_device(o.device, "--device");
  const at::ScalarType dtype = sv::parse_dtype(o.dtype, "--dtype");
  std::unique_ptr<sv::SrModel> model;
  int64_t scale = o.scale;
  std::string name = "sr-images";
  if (!o.weights.empty()) {
    try {
      model = sv::load_sr_model(o.weights, o.model);
    } catch (const Error& e) {
      SPARSESCOPE_FAIL("--weights: ", e.what());
    }
    scale = model->scale();
    name = model->name();
    SPARSESCOPE_CHECK(o.scale == 0 || o.scale == scale, "--scale ", o.scale, ": ", name, " upscales x", scale);
    model->to(device, dtype);
  } else {
    SPARSESCOPE_CHECK(scale > 0, "--sr-images needs --scale");
    SPARSESCOPE_CHECK(fs::is_directory(o.sr_images), "--sr-images: '", printable(o.sr_images), "' is not a folder");
  }
  sv::SrDataset data;
  try {
    data = sv::load_sr_dataset(o.dataset, scale, o.limit);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--dataset: ", e.what());
  }
  for (const auto& [file, reason] : data.failures) std::cerr << "failed: " << file << ": " << reason << "\n";
  const sv::Upscaler upscale =
      model ? sv::Upscaler([&](const at::Tensor& lr) { return model->upscale(lr); }) : saved_images(data, o.sr_images);

  sv::SrScores ours, bicubic;
  double seconds = 0;
  try {
    const auto start = std::chrono::steady_clock::now();
    ours = sv::evaluate_sr(data, upscale, model ? device : at::Device(at::kCPU));
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bicubic = sv::evaluate_sr(data, sv::bicubic_upscaler(scale), at::kCPU);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::cerr << "sparsescope eval: " << batch_failure(e, 1, o.device) << "\n";
    return 1;
  }

  nlohmann::json images = nlohmann::json::array();
  for (size_t i = 0; i < ours.images.size(); ++i) {
    images.push_back({{"image", ours.images[i].name},
                      {"psnr", ours.images[i].psnr},
                      {"ssim", ours.images[i].ssim},
                      {"bicubic_psnr", bicubic.images[i].psnr},
                      {"bicubic_ssim", bicubic.images[i].ssim}});
  }
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& [file, reason] : data.failures) failures.push_back({{"input", file}, {"error", reason}});
  const nlohmann::json summary = {{"model", name},
                                  {"weights", printable(o.weights)},
                                  {"sr_images", printable(o.sr_images)},
                                  {"dataset", data.source},
                                  {"lr", data.lr_files ? "files" : "matlab bicubic of the HR"},
                                  {"scale", scale},
                                  {"metric", "Y of BT.601, crop border = scale (BasicSR)"},
                                  {"images", ours.images.size()},
                                  {"psnr", ours.psnr},
                                  {"ssim", ours.ssim},
                                  {"bicubic_psnr", bicubic.psnr},
                                  {"bicubic_ssim", bicubic.ssim},
                                  {"seconds", seconds},
                                  {"device", o.device},
                                  {"dtype", o.dtype},
                                  {"per_image", images},
                                  {"failed", failures.size()},
                                  {"failures", failures}};
  if (o.json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    std::cout << std::fixed << name << " on " << data.source << " (" << ours.images.size()
              << " images, x" << scale << ", Y): PSNR " << std::setprecision(2) << ours.psnr << " dB  SSIM "
              << std::setprecision(4) << ours.ssim << "   bicubic " << std::setprecision(2) << bicubic.psnr << " dB  "
              << std::setprecision(4) << bicubic.ssim << "\n";
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace sparsescope::cli
