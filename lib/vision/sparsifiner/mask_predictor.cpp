// Note [Sparsifiner's predictor]
// As the official MaskPredictor: shared over heads, q and k reduced to head_dim / reduce_c
// channels, keys reduced along the tokens to N / reduce_n slots by proj_n, the scores (scaled by
// num_heads^-1/2, as upstream) softmaxed over the slots, and mixed back to N keys by the basis
// proj_back_n^T. The class-token row is left out (it stays dense). The kept keys are the top
// ceil(keep_rate * N) of the sparse-basis approximation over all N keys (the class token is not
// forced in); the mask carries no gradient, so the predictor learns only from reconstruction.
// Upstream masks dense logits with -inf; here the class-token row runs dense and the other rows
// run through attend()'s TopK pattern, which is the same softmax over the kept keys.
#include "mask_predictor.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/basis_topk.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace nn = torch::nn;

int64_t SparsifinerOptions::kept_keys(int64_t tokens) const {
  return std::min<int64_t>(tokens, static_cast<int64_t>(std::ceil(keep_rate * static_cast<double>(tokens))));
}

MaskPredictorImpl::MaskPredictorImpl(int64_t head_dim, int64_t num_heads, int64_t tokens,
                                     const SparsifinerOptions& options)
    : options_(options), num_heads_(num_heads), tokens_(tokens), keys_(options.kept_keys(tokens)) {
  const auto& o = options_;
  SPARSESCOPE_CHECK(o.keep_rate > 0 && o.keep_rate <= 1, "sparsifiner: keep rate ", o.keep_rate, " must be in (0, 1]");
  SPARSESCOPE_CHECK(o.reduce_c >= 1 && head_dim / o.reduce_c >= 1, "sparsifiner: reduce_c ", o.reduce_c,
                    " leaves no channels of head dim ", head_dim);
  SPARSESCOPE_CHECK(o.reduce_n >= 1 && o.slots(tokens) >= 1, "sparsifiner: reduce_n ", o.reduce_n, " leaves no slots of ",
                    tokens, " tokens");
  SPARSESCOPE_CHECK(o.basis_topk >= 1 && o.basis_threshold >= 0, "sparsifiner: bad basis settings (top-k ",
                    o.basis_topk, ", threshold ", o.basis_threshold, ")");
  const int64_t c = head_dim / o.reduce_c, slots = o.slots(tokens);
  proj_c_q_ = register_module("proj_c_q", nn::Linear(head_dim, c));
  proj_c_k_ = register_module("proj_c_k", nn::Linear(head_dim, c));
  proj_n_ = register_parameter("proj_n", at::zeros({tokens, slots}));
  proj_back_n_ = register_parameter("proj_back_n", at::zeros({tokens, slots}));
  c10::NoGradGuard no_grad;  // the official initialisation: trunc_normal(std 0.02), zero biases
  for (at::Tensor* w : {&proj_c_q_->weight, &proj_c_k_->weight}) w->normal_(0, 0.02).clamp_(-2.0, 2.0);
  proj_c_q_->bias.zero_();
  proj_c_k_->bias.zero_();
  reset_slot_matrices();
}

void MaskPredictorImpl::reset_slot_matrices(const std::optional<at::Generator>& gen) {
  c10::NoGradGuard no_grad;  // timm's trunc_normal bounds (+-2) are absolute: 100 sigma
  for (at::Tensor* w : {&proj_n_, &proj_back_n_}) w->normal_(0, 0.02, gen).clamp_(-2.0, 2.0);
}

at::Tensor MaskPredictorImpl::coefficients(const at::Tensor& q, const at::Tensor& k) {
  const int64_t N = q.size(2);
  SPARSESCOPE_CHECK(N == tokens_ && k.size(2) == tokens_, "sparsifiner: the predictor was built for ", tokens_,
                    " tokens, the block attends over ", N, " (predictors do not resample to other input sizes)");
  const auto qr = proj_c_q_->forward(q.narrow(2, 1, N - 1));                            // [B, H, N-1, c]
  const auto kr = proj_c_k_->forward(k);                                                // [B, H, N, c]
  const auto slots = at::matmul(kr.transpose(-2, -1), proj_n_.to(kr.scalar_type()));   // [B, H, c, S]
  return at::softmax(at::matmul(qr, slots) / std::sqrt(static_cast<double>(num_heads_)), -1);  // [B, H, N-1, S]
}

at::Tensor MaskPredictorImpl::sparse_basis() const {
  return at::threshold(proj_back_n_.t().abs(), options_.basis_threshold, 0.0);  // [S, N]
}

at::Tensor MaskPredictorImpl::approximate(const at::Tensor& q, const at::Tensor& k, bool sparse) {
  auto coef = coefficients(q, k);
  at::Tensor basis = proj_back_n_.t();  // [S, N]
  if (sparse) {
    basis = sparse_basis();
    if (options_.basis_topk < coef.size(-1)) {
      const auto top = coef.topk(options_.basis_topk, -1);
      coef = at::zeros_like(coef).scatter(-1, std::get<1>(top), std::get<0>(top));
    }
  }
  return at::matmul(coef, basis.to(coef.scalar_type()));  // [B, H, N-1, N]
}

at::Tensor MaskPredictorImpl::kept_keys(const at::Tensor& q, const at::Tensor& k) {
  c10::NoGradGuard no_grad;
  // The sparse-basis approximation's top keys without materialising it (basis_topk.h): each row is
  // the combination of the basis rows of its top basis_topk coefficients.
  const at::Tensor coef = coefficients(q, k);
  const int64_t slots = coef.size(-1);
  if (options_.basis_topk < slots) {
    const auto [values, index] = coef.topk(options_.basis_topk, -1);
    return basis_topk(values, index, sparse_basis(), keys_);
  }
  return basis_topk(coef, at::arange(slots, coef.options().dtype(at::kLong)).expand_as(coef), sparse_basis(), keys_);
}

at::Tensor MaskPredictorImpl::attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, Probe* probe) {
  if (mode == SparsifinerMode::Dense) return sparsescope::attend(q, k, v, Dense{}, probe);
  if (mode == SparsifinerMode::Reconstruct && is_training()) {
    const auto approx = approximate(q.detach(), k.detach(), /*sparse_basis=*/false).to(at::kFloat);
    const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    const auto q_rows = q.detach().narrow(2, 1, q.size(2) - 1).to(at::kFloat);
    const auto target = at::softmax(at::matmul(q_rows, k.detach().to(at::kFloat).transpose(-2, -1)) * scale, -1);
    reconstruction_loss = (approx - target).pow(2).sum();
    return sparsescope::attend(q, k, v, Dense{}, probe);
  }
  const int64_t N = q.size(2);
  const at::Tensor keys = kept_keys(q, k);  // [B, H, N-1, kept]
  if (probe) {
    // The recorder sees the block's whole connectivity as one TopK pattern: the class-token row
    // lists every key, the others their kept keys padded with -1.
    const auto all = at::arange(N, keys.options()).expand({keys.size(0), keys.size(1), 1, N});
    const auto rows = at::constant_pad_nd(keys, {0, N - keys.size(-1)}, -1);
    probe->observe(q, k, v, TopK{at::cat({all, rows}, 2), std::nullopt}, 1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  }
  const auto cls = sparsescope::attend(q.narrow(2, 0, 1), k, v, Dense{});
  const auto rest = sparsescope::attend(q.narrow(2, 1, N - 1), k, v, TopK{keys, std::nullopt});
  return at::cat({cls, rest}, 2);
}

void MaskPredictorImpl::count_flops(const AttentionSiteShape& site, MhsaFlops& f) {
  const auto N = static_cast<double>(site.tokens), dh = static_cast<double>(site.head_dim);
  const auto H = static_cast<double>(site.num_heads), d = dh * H;
  const auto k = static_cast<double>(options_.kept_keys(site.tokens));
  const auto ch = static_cast<double>(site.head_dim / options_.reduce_c);
  const auto S = static_cast<double>(options_.slots(site.tokens));
  const double coefficients = std::min(S, static_cast<double>(options_.basis_topk));
  f.attention += 2 * d * (N + (N - 1) * k);  // the class-token row sees every key
  f.predictor += H * (2 * N - 1) * dh * ch          // channel reductions of the queries after the class token and of the keys
                 + H * ch * N * S                 // keys down to the slots
                 + H * (N - 1) * ch * S           // low-rank scores
                 + H * (N - 1) * coefficients * basis_nonzeros_per_row();  // sparse up-projection
}

double MaskPredictorImpl::basis_nonzeros_per_row() {
  c10::NoGradGuard no_grad;
  const auto kept = proj_back_n_.abs().gt(options_.basis_threshold);  // [N, S]: a basis row is a column here
  return kept.sum().item<double>() / static_cast<double>(proj_back_n_.size(1));
}

}  // namespace sparsescope::vision
