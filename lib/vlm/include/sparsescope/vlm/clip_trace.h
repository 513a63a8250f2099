#pragma once
// What a trace of CLIP's image tower says about itself (the sites visual.transformer.resblocks.N.attn).
#include <string>

#include "sparsescope/vision/trace_metadata.h"
#include "sparsescope/vlm/clip.h"

namespace sparsescope::vlm {

/// Model name, method "dense", the input as given, and the layout: the class token, then the patch
/// grid [1, S/p, S/p]. The caller adds the texts as top-k.
vision::TraceInfo clip_trace_info(const ClipConfig& config, const std::string& input);

}  // namespace sparsescope::vlm
