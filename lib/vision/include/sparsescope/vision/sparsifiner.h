#pragma once
// Sparsifiner (Wei et al., CVPR 2023): a per-block connectivity predictor that picks the keys each
// query attends to; the kept connections run through attend()'s TopK kernel. A ViT whose config
// has `sparsifiner` set carries the predictors (vit.h); this header adds its FLOPs, its two-phase
// training and its mask recall. lib/vision/sparsifiner/README.md has the method and our numbers.
#include <cstdint>
#include <string>
#include <vector>

#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/train.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

/// Sets how every predictor of `model` attends. Throws sparsescope::Error when it has none.
void set_sparsifiner_mode(VisionTransformer& model, SparsifinerMode mode);

/// Multiply-adds of the multi-head self-attention of one image, summed over the blocks.
struct MhsaFlops {
  double projections = 0;  ///< the qkv and output projections, the same dense or sparse
  double attention = 0;    ///< q k^T and probabilities x v over the keys each query sees
  double predictor = 0;    ///< channel and key-token reductions, low-rank scores, sparse up-projection
  double total() const { return projections + attention + predictor; }
};

/// Dense attention's count for a model without predictors or with `dense`; else Sparsifiner's,
/// with the up-projection counted over each block's measured basis non-zeros (softmax and top-k
/// selection are not counted, as usual).
MhsaFlops mhsa_flops(VisionTransformer& model, bool dense = false);

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

/// Mask recall per block: the dense attention mass of `dense` (the teacher) that the keys kept by
/// `model`'s predictors cover, averaged over the first `images` images of `data`, heads and the
/// queries after the class token (whose row is dense). Both models must share the input size.
std::vector<double> mask_recall(VisionTransformer& model, VisionTransformer& dense, const ImageDataset& data,
                                int64_t images, int64_t batch = 256);

}  // namespace sparsescope::vision
