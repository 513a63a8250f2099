// DLGSANet weights from our model files (with their card) or BasicSR checkpoints.
#include <ATen/ATen.h>

#include "sparsescope/vision/module_weights.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/dlgsanet.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/state_dict.h"

namespace sparsescope::vision {

DLGSANet load_dlgsanet(const std::string& path, const std::string& name) {
  NamedTensors weights;
  DlgsaConfig config;
  if (is_torch_save(path)) {
    SPARSESCOPE_CHECK(!name.empty(), "'", path, "' is a PyTorch checkpoint without a model card: name its "
                      "configuration (--model dlgsanet_light_x4, ...)");
    weights = load_pth_state_dict(path);
  } else {
    SafetensorsFile file = load_safetensors(path);
    const auto card = file.metadata.find(kDlgsaCardKey);
    if (name.empty()) {
      SPARSESCOPE_CHECK(card != file.metadata.end(), "'", path, "' carries no ", kDlgsaCardKey,
                        " model card: name its configuration (--model dlgsanet_light_x4, ...)");
      try {
        config = dlgsanet_config_from_json(card->second);
      } catch (const Error& e) {
        SPARSESCOPE_FAIL("'", path, "': ", e.what());
      }
    }
    weights = std::move(file.tensors);
  }
  if (!name.empty()) config = dlgsanet_config(name);
  DLGSANet model(config);
  assign_weights(*model, cast_floating(std::move(weights), at::kFloat), path);
  model->eval();
  return model;
}

}  // namespace sparsescope::vision
