// Images per second of a sparsescope ViT forward pass (random weights: speed does not depend on
// them) for one model, batch size, dtype and device; prints one JSON line. bench/vit.sh runs it
// beside timm's model (bench/vit_timm.py) on the same machine in the same job. With `graph` (CUDA
// only), the forward is captured once as a CUDA graph and replayed (GraphedForward, as `infer
// --cuda-graph` runs it): what a fixed-shape caller gets without the host's per-op launch cost.
//   sparsescope-bench-vit MODEL BATCH fp32|fp16|bf16 cpu|cuda [ITERS [graph]]
#include <torch/cuda.h>
#include <torch/torch.h>

#include <functional>
#include <memory>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "sparsescope/vision/graphed_forward.h"
#include "sparsescope/vision/vit.h"
#include "timing.h"

int main(int argc, char** argv) try {
  if (argc < 5) {
    std::cerr << "usage: " << argv[0] << " MODEL BATCH fp32|fp16|bf16 cpu|cuda [ITERS [graph]]\n";
    return 2;
  }
  const std::string model_name = argv[1];
  const int64_t batch = std::stoll(argv[2]);
  const std::string dtype_name = argv[3];
  const at::Device device(argv[4]);
  const at::ScalarType dtype = sparsescope::bench::parse_dtype(dtype_name);
  const int iters = argc > 5 ? std::stoi(argv[5]) : 20;
  const bool graph = argc > 6;
  SPARSESCOPE_CHECK(!graph || std::string(argv[6]) == "graph", "expected `graph` after ITERS, got '", argv[6], "'");
  SPARSESCOPE_CHECK(!graph || device.is_cuda(), "graph: CUDA graphs need a cuda device, got ", device.str());
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));

  torch::manual_seed(0);
  sparsescope::vision::VisionTransformer model(sparsescope::vision::vit_config(model_name));
  model->eval();
  model->to(device, dtype);
  const auto& cfg = model->config();
  const auto images = torch::randn({batch, cfg.in_chans, cfg.img_size, cfg.img_size},
                                   torch::dtype(dtype).device(device));
  c10::InferenceMode guard;
  std::function<void()> forward = [&] { model->forward(images); };
  std::unique_ptr<sparsescope::vision::GraphedForward> graphed;
  if (graph) {
    graphed = std::make_unique<sparsescope::vision::GraphedForward>(
        [&](const at::Tensor& x) { return model->forward(x); }, images);
    forward = [&] { (*graphed)(images); };
  }
  // The median over 5 rounds of `iters` forward passes.
  const double ms = sparsescope::bench::median_ms(forward, device, iters, 5);
  const double images_per_second = 1e3 * static_cast<double>(batch) / ms;
  std::printf(
      "{\"impl\": \"sparsescope\", \"model\": \"%s\", \"batch\": %lld, \"dtype\": \"%s\", \"device\": \"%s\", "
      "\"graph\": %s, \"threads\": %d, \"images_per_second\": %.1f}\n",
      model_name.c_str(), static_cast<long long>(batch), dtype_name.c_str(), device.str().c_str(),
      graph ? "true" : "false", at::get_num_threads(), images_per_second);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "sparsescope-bench-vit: " << e.what() << "\n";
  return 1;
}
