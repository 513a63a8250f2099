// Images per second of a sparsescope ViT forward pass (random weights: speed does not depend on
// them) for one model, batch size, dtype and device; prints one JSON line. bench/vit.sh runs it
// beside timm's model (bench/vit_timm.py) on the same machine in the same job.
//   sparsescope-bench-vit MODEL BATCH fp32|fp16|bf16 cpu|cuda [ITERS]
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/vit.h"

namespace {

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "fp32") return at::kFloat;
  if (s == "fp16") return at::kHalf;
  if (s == "bf16") return at::kBFloat16;
  SPARSESCOPE_FAIL("dtype: expected fp32, fp16 or bf16, got '", s, "'");
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 5) {
    std::cerr << "usage: " << argv[0] << " MODEL BATCH fp32|fp16|bf16 cpu|cuda [ITERS]\n";
    return 2;
  }
  const std::string model_name = argv[1];
  const int64_t batch = std::stoll(argv[2]);
  const std::string dtype_name = argv[3];
  const at::Device device(argv[4]);
  const int iters = argc > 5 ? std::stoi(argv[5]) : 20;
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));

  torch::manual_seed(0);
  sparsescope::vision::VisionTransformer model(sparsescope::vision::vit_config(model_name));
  model->eval();
  model->to(device, parse_dtype(dtype_name));
  const auto& cfg = model->config();
  const auto images = torch::randn({batch, cfg.in_chans, cfg.img_size, cfg.img_size},
                                   torch::dtype(parse_dtype(dtype_name)).device(device));
  const auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };

  c10::InferenceMode guard;
  for (int i = 0; i < 3; ++i) model->forward(images);
  sync();
  // Median over rounds of `iters` forward passes each.
  std::vector<double> seconds;
  for (int round = 0; round < 5; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) model->forward(images);
    sync();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double images_per_second = static_cast<double>(batch) * iters / seconds[seconds.size() / 2];
  std::printf(
      "{\"impl\": \"sparsescope\", \"model\": \"%s\", \"batch\": %lld, \"dtype\": \"%s\", \"device\": \"%s\", "
      "\"threads\": %d, \"images_per_second\": %.1f}\n",
      model_name.c_str(), static_cast<long long>(batch), dtype_name.c_str(), device.str().c_str(),
      at::get_num_threads(), images_per_second);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "sparsescope-bench-vit: " << e.what() << "\n";
  return 1;
}
