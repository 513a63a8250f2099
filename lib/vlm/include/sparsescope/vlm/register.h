#pragma once
// The vision-language layer's registry entries (training tasks such as "clip"), added to
// sparsescope::vision's registries (registry.h, train_task.h). Programs that offer them call this
// once before listing or parsing tasks; calling it again does nothing.
namespace sparsescope::vlm {

void register_vlm_methods();

}  // namespace sparsescope::vlm
