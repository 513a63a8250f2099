#include "sparsescope/vision/sparsifiner.h"

#include <algorithm>

#include "mask_predictor.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {

std::vector<MaskPredictorImpl*> predictors(VisionTransformer& model) {
  std::vector<MaskPredictorImpl*> found;
  for (const auto& module : model->modules(/*include_self=*/false)) {
    if (auto* p = module->as<MaskPredictorImpl>()) found.push_back(p);
  }
  return found;
}

}  // namespace

void set_sparsifiner_mode(VisionTransformer& model, SparsifinerMode mode) {
  const auto found = predictors(model);
  SPARSESCOPE_CHECK(!found.empty(), model->config().name, " has no Sparsifiner predictors");
  for (auto* p : found) p->mode = mode;
}

MhsaFlops mhsa_flops(VisionTransformer& model, bool dense) {
  const ViTConfig& c = model->config();
  const auto N = static_cast<double>(c.tokens()), d = static_cast<double>(c.embed_dim);
  const auto H = static_cast<double>(c.num_heads), dh = d / H;
  MhsaFlops f;
  f.projections = c.depth * 4 * N * d * d;
  const auto found = predictors(model);
  if (dense || found.empty()) {
    f.attention = c.depth * 2 * N * N * d;
    return f;
  }
  for (auto* p : found) {
    const SparsifinerOptions& o = p->options();
    const auto k = static_cast<double>(o.kept_keys(c.tokens()));
    const auto ch = static_cast<double>(c.embed_dim / c.num_heads / o.reduce_c);
    const auto S = static_cast<double>(o.slots(c.tokens()));
    const double coefficients = std::min(S, static_cast<double>(o.basis_topk));
    f.attention += 2 * d * (N + (N - 1) * k);  // the class-token row sees every key
    f.predictor += H * (2 * N - 1) * dh * ch          // channel reductions of the queries after the class token and of the keys
                   + H * ch * N * S                 // keys down to the slots
                   + H * (N - 1) * ch * S           // low-rank scores
                   + H * (N - 1) * coefficients * p->basis_nonzeros_per_row();  // sparse up-projection
  }
  return f;
}

}  // namespace sparsescope::vision
