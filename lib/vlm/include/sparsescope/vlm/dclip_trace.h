#pragma once
// DCLIP's teacher on one image, recorded: the image's region boxes and a caption through the frozen
// CLIP (as the teacher's inputs are made in training), then the teacher's cross-attention, words to
// regions and regions to words, per head, as a trace with a cross layout (trace_metadata.h).
#include <array>
#include <string>
#include <vector>

#include "sparsescope/vision/image.h"
#include "sparsescope/vision/trace.h"
#include "sparsescope/vlm/clip.h"
#include "sparsescope/vlm/clip_tokenizer.h"
#include "sparsescope/vlm/dclip.h"

namespace sparsescope::vlm {

/// The trace's sites are "cross_modal_attention.text_to_image" ([words, regions]) and
/// ".image_to_text" ([regions, words]); its layout's words are the caption's BPE tokens as text (up
/// to CLIP's context), its regions the boxes in the pixels of Trace::image, `image` scaled to fit
/// `max_side`. `boxes` are x1, y1, x2, y2 in `image`'s pixels, clipped to it as in training.
/// Throws sparsescope::Error naming the box that lies outside the image or is empty, when there is
/// no box, and when the caption has no token; the teacher's width must be CLIP's embedding.
vision::Trace record_dclip_teacher(CLIP& clip, DclipTeacher& teacher, const ClipTokenizer& tokenizer,
                                   const vision::Image& image, const std::vector<std::array<int, 4>>& boxes,
                                   const std::string& caption, const std::string& input, int max_side = 512);

}  // namespace sparsescope::vlm
