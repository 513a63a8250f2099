#pragma once
// What DCLIP's teacher and student read, computed once by the frozen CLIP (as upstream's
// tokenizers do under no_grad): per image its regions' features, per caption its tokens' features
// and CLIP's text features.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "sparsescope/vlm/clip.h"
#include "sparsescope/vlm/clip_data.h"
#include "sparsescope/vlm/clip_tokenizer.h"

namespace sparsescope::vlm::detail {

struct DclipInputs {
  at::Tensor regions;       ///< [I, R, E] CLIP image features of each image's crops, zero-padded
  at::Tensor region_valid;  ///< [I, R] bool; an image without regions has one zero region (upstream)
  at::Tensor tokens;        ///< [T, L, E] projected features of each caption's tokens between its start and end
  at::Tensor token_valid;   ///< [T, L] bool; a caption without such tokens keeps its end-of-text feature
  at::Tensor text;          ///< [T, E] CLIP's text features (not normalised): the teacher's target
  at::Tensor ids;           ///< [T, context] token ids
  at::Tensor teacher;       ///< [T, E] the teacher's global embedding of each caption with its image (student stage)
};

/// CLIP image features of region crops uint8 [R, 3, S, S] as upstream's teacher encodes them:
/// pixels in [0, 1] without CLIP's mean and std, get_image_features (not normalised); [R, E]
/// float32 on `clip`'s device, `batch` crops at a time, under no_grad.
at::Tensor region_features(CLIP& clip, const at::Tensor& crops, int64_t batch);

/// The teacher's text tokens of captions `ids` [b, context]: the projected features of the tokens
/// between start and end, at most `length` of them ([b, length, E], zero-padded), and which are
/// real ([b, length] bool); a caption without such tokens keeps its end-of-text feature.
struct CaptionTokens {
  at::Tensor tokens, valid;
};
CaptionTokens caption_tokens(CLIP& clip, const at::Tensor& ids, int64_t length);

/// Region crops as upstream's teacher encodes them: pixels in [0, 1] without CLIP's mean and std,
/// get_image_features (not normalised). Everything on `clip`'s device, float32, under no_grad.
DclipInputs dclip_inputs(CLIP& clip, const ClipTokenizer& tokenizer, const ImageTextPairs& pairs, int64_t batch);

/// For each image index, one of its captions: drawn uniformly with `gen` (upstream's
/// random.choice per item), else the first. int64 [B] on `device`.
at::Tensor pick_captions(const at::Tensor& images, const std::vector<std::vector<int64_t>>& captions_of, at::Generator* gen,
                         at::Device device);

}  // namespace sparsescope::vlm::detail
