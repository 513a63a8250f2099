#pragma once
// Sparsifiner (Wei et al., CVPR 2023): a per-block connectivity predictor that picks the keys each
// query attends to; the kept connections run through attend()'s TopK kernel. It is the attention
// policy "sparsifiner" (registry.h): a ViT whose config names it carries a predictor in every block
// (parameters `blocks.<i>.attn.mask_predictor.*`); its FLOPs come through mhsa_flops
// (attention_method.h), its mask recall through mask_recall (there too). This header adds its
// options in a config and its two-phase training (the training task "sparsifiner"). lib/vision/sparsifiner/README.md has the
// method and our numbers.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sparsescope/vision/attention_method.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/sparsifiner_options.h"
#include "sparsescope/vision/train.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

/// The registered name of Sparsifiner's attention policy and training task.
inline constexpr const char* kSparsifinerPolicy = "sparsifiner";

/// The predictor settings of a config that runs Sparsifiner, nullopt for any other policy.
std::optional<SparsifinerOptions> sparsifiner_options(const ViTConfig& config);
/// `config` with Sparsifiner's predictors of `options` in every block (nullopt: dense attention).
ViTConfig with_sparsifiner(ViTConfig config, const std::optional<SparsifinerOptions>& options);

/// The keys a Sparsifiner policy (attention_policy("sparsifiner").make(...)) keeps for the queries
/// after the class token: [B, H, N - 1, kept] int64 from q, k [B, H, N, D]. Throws
/// sparsescope::Error for another policy.
at::Tensor sparsifiner_kept_keys(AttentionPolicyImpl& policy, const at::Tensor& q, const at::Tensor& k);

/// Sets how every predictor of `model` attends. Throws sparsescope::Error when it has none.
void set_sparsifiner_mode(VisionTransformer& model, SparsifinerMode mode);

struct SparsifinerTrainOptions {
  std::string teacher;             ///< the dense model (weights with a model card): start and teacher
  SparsifinerOptions method;
  /// Phase 1, reconstruction: dense attention, only the predictors train, on the summed squared
  /// error to the teacher's attention; learning rate warmup towards reconstruct_lr, cosine down
  /// to reconstruct_min_lr. Its run is written to finetune.out + "/reconstruct".
  int64_t reconstruct_epochs = 5;
  double reconstruct_lr = 3e-4;
  double reconstruct_min_lr = 2e-4;
  double reconstruct_weight = 0.01;
  /// Phase 2, fine-tuning: predictors frozen, sparse attention, the backbone trains on
  /// cross-entropy + distill_weight * KL(teacher logits || student) + token_weight * MSE of the
  /// final patch tokens. `finetune` is its recipe (epochs, lr, ..., out, device, precision).
  double distill_weight = 0.5;
  double token_weight = 0.5;
  TrainOptions finetune;
};

struct SparsifinerTrainResult {
  TrainResult reconstruct, finetune;
};

/// Trains Sparsifiner from a dense teacher as the official code does (two phases, above).
SparsifinerTrainResult train_sparsifiner(const ImageDataset& train, const ImageDataset* eval,
                                         const SparsifinerTrainOptions& options, const TrainCallbacks& callbacks = {});

}  // namespace sparsescope::vision
