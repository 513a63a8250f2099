// DLGSANet's registry entry: the model family.
#include "sparsescope/vision/dlgsanet.h"
#include "sparsescope/vision/registry.h"

namespace sparsescope::vision::detail {

void register_dlgsanet() {
  register_model_family({"dlgsanet",
                         "DLGSANet (Li et al. 2023): super-resolution with dynamic local and sparse global "
                         "self-attention, official parameter names (BasicSR checkpoints load unchanged)",
                         dlgsanet_config_names});
}

}  // namespace sparsescope::vision::detail
