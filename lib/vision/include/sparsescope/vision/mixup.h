#pragma once
// timm's Mixup in mode 'batch', as MAE's and LUT's fine-tuning use it (mixup 0.8, cutmix 1.0,
// switch probability 0.5, label smoothing 0.1): one draw per batch, every sample mixed with the
// batch reversed, soft targets for SoftTargetCrossEntropy.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

namespace sparsescope::vision {

struct MixupOptions {
  double mixup_alpha = 0.8;      ///< Beta(alpha, alpha) of the blend weight; 0 off
  double cutmix_alpha = 1.0;     ///< Beta(alpha, alpha) of the kept area; 0 off
  double prob = 1.0;             ///< of mixing a batch at all
  double switch_prob = 0.5;      ///< of cutmix rather than mixup when both are on
  double label_smoothing = 0.1;  ///< of the soft targets
  bool active() const { return mixup_alpha > 0 || cutmix_alpha > 0; }
};

/// One batch's draw (timm's _params_per_batch and cutmix_bbox_and_lam).
struct MixDraw {
  double lam = 1;                          ///< weight of each sample itself (cutmix: its area left)
  bool cutmix = false;
  int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;  ///< cutmix's box [y0, y1) x [x0, x1)
};

/// Draws with `gen` as timm does with numpy: mix with probability `prob`; cutmix with probability
/// `switch_prob` when both kinds are on; lam ~ Beta(alpha, alpha); cutmix's box of side
/// int(side * sqrt(1 - lam)) centred at a uniform pixel, clipped to the image, and lam corrected
/// to the area it leaves.
MixDraw draw_mix(const MixupOptions& options, int64_t height, int64_t width, at::Generator& gen);

/// images [B, C, H, W] mixed as `draw` says with images.flip(0) (sample i with sample B - 1 - i),
/// and the soft targets [B, classes] of labels [B]: lam * smooth(label) + (1 - lam) * smooth(the
/// paired label), smooth() putting 1 - smoothing + smoothing / classes on the class and
/// smoothing / classes elsewhere.
std::pair<at::Tensor, at::Tensor> apply_mix(const at::Tensor& images, const at::Tensor& labels, int64_t classes,
                                            const MixDraw& draw, double label_smoothing);

/// timm's SoftTargetCrossEntropy: the batch mean of sum_k -target_k * log_softmax(logits)_k.
at::Tensor soft_target_cross_entropy(const at::Tensor& logits, const at::Tensor& targets);

}  // namespace sparsescope::vision
