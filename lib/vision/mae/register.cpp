// MAE's registry entries: the model family, the pretraining tasks (pretrain.cpp) and fine-tuning
// (finetune.cpp).
#include "sparsescope/vision/mae.h"
#include "sparsescope/vision/registry.h"

namespace sparsescope::vision::detail {

void register_mae_task();           // pretrain.cpp
void register_mae_finetune_task();  // finetune.cpp

void register_mae() {
  register_model_family({"mae",
                         "masked autoencoders (MAE, He et al. 2022) and MAE-LUT (Kim et al. 2024): a ViT encoder "
                         "over the visible patches and a pixel decoder, official parameter names",
                         mae_config_names});
  register_mae_task();
  register_mae_finetune_task();
}

}  // namespace sparsescope::vision::detail
