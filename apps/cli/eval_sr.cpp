#include "eval_sr.h"

#include <ATen/ATen.h>

#include <chrono>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "batch.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/dlgsanet.h"
#include "sparsescope/vision/model_spec.h"
#include "sparsescope/vision/sr_data.h"
#include "sparsescope/vision/sr_eval.h"
#include "sparsescope/vision/utf8.h"

namespace sparsescope::cli {

namespace sv = vision;

int run_sr_eval(const SrEvalRequest& o) {
  const at::Device device = sv::parse_device(o.device, "--device");
  const at::ScalarType dtype = sv::parse_dtype(o.dtype, "--dtype");
  sv::DLGSANet model{nullptr};
  try {
    model = sv::load_dlgsanet(o.weights, o.model);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--weights: ", e.what());
  }
  const int64_t scale = model->config().scale;
  SPARSESCOPE_CHECK(o.scale == 0 || o.scale == scale, "--scale ", o.scale, ": ", model->config().name,
                    " upscales x", scale);
  model->to(device, dtype);
  sv::SrDataset data;
  try {
    data = sv::load_sr_dataset(o.dataset, scale, o.limit);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("--dataset: ", e.what());
  }
  for (const auto& [file, reason] : data.failures) std::cerr << "failed: " << file << ": " << reason << "\n";

  sv::SrScores ours, bicubic;
  double seconds = 0;
  try {
    const auto start = std::chrono::steady_clock::now();
    ours = sv::evaluate_sr(data, [&](const at::Tensor& lr) { return model->forward(lr.to(dtype)).to(at::kFloat); },
                           device);
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
  const nlohmann::json summary = {{"model", model->config().name},
                                  {"weights", printable(o.weights)},
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
    std::cout << std::fixed << model->config().name << " on " << data.source << " (" << ours.images.size()
              << " images, x" << scale << ", Y): PSNR " << std::setprecision(2) << ours.psnr << " dB  SSIM "
              << std::setprecision(4) << ours.ssim << "   bicubic " << std::setprecision(2) << bicubic.psnr << " dB  "
              << std::setprecision(4) << bicubic.ssim << "\n";
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace sparsescope::cli
