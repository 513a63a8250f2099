// DLGSANet's registry entries: the model family, the super-resolution training task (train_sr.cpp) and
// the SrModel the apps load (sr_model.cpp).
#include "sparsescope/vision/dlgsanet.h"
#include "sparsescope/vision/registry.h"

namespace sparsescope::vision::detail {

void register_sr_task();           // train_sr.cpp
void register_dlgsanet_sr_model();  // sr_model.cpp

void register_dlgsanet() {
  register_model_family({"dlgsanet",
                         "DLGSANet (Li et al. 2023): super-resolution with dynamic local and sparse global "
                         "self-attention, official parameter names (BasicSR checkpoints load unchanged)",
                         dlgsanet_config_names});
  register_sr_task();
  register_dlgsanet_sr_model();
}

}  // namespace sparsescope::vision::detail
