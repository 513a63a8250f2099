#include "sparsescope/vlm/register.h"

#include <mutex>

namespace sparsescope::vlm {

namespace detail {
void register_clip_task();     // clip/train_clip.cpp
void register_dclip_tasks();   // dclip/train_dclip.cpp
}  // namespace detail

void register_vlm_methods() {
  static std::once_flag once;
  std::call_once(once, [] {
    detail::register_clip_task();
    detail::register_dclip_tasks();
  });
}

}  // namespace sparsescope::vlm
