// Images per second of a sparsescope DLGSANet (random weights: speed does not depend on them) for
// one configuration: `infer` runs eval mode (TLC, as the official validation) on BATCH LR images of
// SIZE x SIZE pixels; `train` one optimisation step (train mode: global attention, L1 loss, Adam)
// on BATCH patches of SIZE x SIZE LR pixels. Prints one JSON line; bench/dlgsanet_model.sh runs it
// beside the official model (bench/dlgsanet_official.py) in the same job. cuDNN's benchmark mode is
// on for both, as our trainer and BasicSR's scripts run.
//   sparsescope-bench-dlgsanet CONFIG infer|train BATCH SIZE fp32|fp16|bf16 cpu|cuda [ITERS]
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "sparsescope/vision/dlgsanet.h"
#include "timing.h"

namespace sv = sparsescope::vision;

int main(int argc, char** argv) try {
  if (argc < 7) {
    std::cerr << "usage: " << argv[0] << " CONFIG infer|train BATCH SIZE fp32|fp16|bf16 cpu|cuda [ITERS]\n";
    return 2;
  }
  const std::string config = argv[1], mode = argv[2], dtype_name = argv[5];
  const int64_t batch = std::stoll(argv[3]), size = std::stoll(argv[4]);
  const at::ScalarType dtype = sparsescope::bench::parse_dtype(dtype_name);
  const at::Device device(argv[6]);
  const int iters = argc > 7 ? std::stoi(argv[7]) : 10;
  SPARSESCOPE_CHECK(mode == "infer" || mode == "train", "mode: expected infer or train, got '", mode, "'");

  torch::manual_seed(0);
  at::globalContext().setBenchmarkCuDNN(true);
  sv::DLGSANet model(sv::dlgsanet_config(config));
  model->to(device, dtype);
  const auto options = torch::dtype(dtype).device(device);
  const auto lr = torch::rand({batch, 3, size, size}, options);
  double ms = 0;
  if (mode == "infer") {
    model->eval();
    c10::InferenceMode guard;
    ms = sparsescope::bench::median_ms([&] { model->forward(lr); }, device, iters, 5);
  } else {
    model->train();
    const int64_t scale = model->config().scale;
    const auto hr = torch::rand({batch, 3, scale * size, scale * size}, options);
    torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(5e-4).betas({0.9, 0.99}));
    ms = sparsescope::bench::median_ms(
        [&] {
          adam.zero_grad();
          torch::l1_loss(model->forward(lr), hr).backward();
          adam.step();
        },
        device, iters, 5);
  }
  std::printf(
      "{\"impl\": \"sparsescope\", \"model\": \"%s\", \"mode\": \"%s\", \"batch\": %lld, \"size\": %lld, "
      "\"dtype\": \"%s\", \"device\": \"%s\", \"images_per_second\": %.2f}\n",
      config.c_str(), mode.c_str(), static_cast<long long>(batch), static_cast<long long>(size), dtype_name.c_str(),
      device.str().c_str(), 1e3 * static_cast<double>(batch) / ms);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "sparsescope-bench-dlgsanet: " << e.what() << "\n";
  return 1;
}
