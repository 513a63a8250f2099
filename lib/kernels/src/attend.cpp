// Note [attend() dispatch]
//
// attend() is the one attention call of every model (DESIGN.md section 3). It
//   1. checks every argument in a fixed order (checks.h) with the caller's op prefix,
//   2. resolves the scale (the pattern's, else 1/sqrt(D)),
//   3. tells the Probe, if any, what is about to be computed,
//   4. runs the first backend of backends() whose can_use() accepts the call.
// Backends are ATen sdp_utils-style predicates with reasons rather than an if-chain, so that the
// CLI and the viewer can show why a fused kernel was not used (backend_choices()). The list is in
// priority order: fused CUDA kernels go first, each with its own predicate (device, architecture,
// dtype, head dim, strides, pattern kind; cuda_permuted runs an inner pattern's kernel with the
// permutation fused into its loads and stores), then the generic lowering of Permuted onto its
// inner pattern (gather, dispatch the inner call again, scatter back), then the reference, which accepts every other pattern on any
// device and is the autograd path on CPU. Every backend derives "which keys does this query see"
// from mask.h, so the reference and the kernels cannot drift apart. The fused backends compute
// forward only; their autograd backward differentiates the reference (cuda_backend.cpp).
#include "sparsescope/kernels/attend.h"

#include <ATen/ATen.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend.h"
#include "checks.h"
#if defined(SPARSESCOPE_WITH_CUDA)
#include "cuda_backend.h"
#endif
#include "reference/reference.h"
#include "sparsescope/kernels/probe.h"

namespace sparsescope {
namespace detail {
namespace {

constexpr const char* kAttendPrefix = "sparsescope::attend: ";

bool can_use_permuted(const AttendParams& params, std::string* why_not) {
  if (std::holds_alternative<Permuted>(params.pattern)) return true;
  if (why_not) *why_not = std::string("not a Permuted pattern (") + kind_name(params.pattern) + ")";
  return false;
}

// Gathers rows along the token dim (2) of x [B, H, L, C] by index [B|1, H|1, L].
at::Tensor gather_tokens(const at::Tensor& x, const at::Tensor& index) {
  const auto sizes = x.sizes();
  return x.gather(2, index.unsqueeze(-1).expand({sizes[0], sizes[1], sizes[2], sizes[3]}));
}

AttendResult run_permuted(const AttendParams& params) { return lower_permuted(params, dispatch); }

const std::vector<Backend>& backends() {
  static const std::vector<Backend> list = {
#if defined(SPARSESCOPE_WITH_CUDA)
      {"cuda_dense", cuda_backend::can_use_dense, cuda_backend::run_dense},
      {"cuda_block_sparse", cuda_backend::can_use_block_sparse, cuda_backend::run_block_sparse},
      {"cuda_topk", cuda_backend::can_use_topk, cuda_backend::run_topk},
      {"cuda_neighborhood", cuda_backend::can_use_neighborhood, cuda_backend::run_neighborhood},
      {"cuda_permuted", cuda_backend::can_use_permuted, cuda_backend::run_permuted},
#endif
      {"permuted", can_use_permuted, run_permuted},
      {"reference", reference::can_use, reference::run},
  };
  return list;
}

double resolve_scale(const at::Tensor& q, const Pattern& pattern) {
  return scale_of(pattern).value_or(1.0 / std::sqrt(static_cast<double>(q.size(3))));
}

}  // namespace

AttendResult lower_permuted(const AttendParams& params, AttendResult (*run_inner)(const AttendParams&)) {
  const auto& p = std::get<Permuted>(params.pattern);
  const at::Tensor& kv_perm = p.kv_perm.defined() ? p.kv_perm : p.perm;
  const int64_t batch = params.q.size(0), heads = params.q.size(1), n = params.q.size(2);
  const at::Tensor q = gather_tokens(params.q, p.perm);
  const at::Tensor k = gather_tokens(expand_kv_heads(params.k, heads), kv_perm);
  const at::Tensor v = gather_tokens(expand_kv_heads(params.v, heads), kv_perm);
  const AttendResult r = run_inner({q, k, v, *p.inner, params.scale});
  return {gather_tokens(r.out, p.inverse),
          r.lse.gather(2, p.inverse.expand({batch, heads, n}))};
}

AttendResult dispatch(const AttendParams& params) {
  std::string reasons;
  for (const Backend& backend : backends()) {
    std::string why_not;
    if (backend.can_use(params, &why_not)) return backend.run(params);
    reasons += std::string(" ") + backend.name + ": " + why_not + ";";
  }
  TORCH_INTERNAL_ASSERT(false, "no attend() backend accepts a checked call:", reasons);
}

AttendResult attend_impl(const char* prefix, const at::Tensor& q, const at::Tensor& k,
                         const at::Tensor& v, const Pattern& pattern, Probe* probe) {
  check_attend(prefix, q, k, v, pattern);
  const double scale = resolve_scale(q, pattern);
  if (probe) probe->observe(q, k, v, pattern, scale);
  return dispatch({q, k, v, pattern, scale});
}

}  // namespace detail

at::Tensor expand_kv_heads(const at::Tensor& kv, int64_t heads) {
  const int64_t kv_heads = kv.size(1);
  if (kv_heads == heads) return kv;
  const auto s = kv.sizes();
  return kv.unsqueeze(2).expand({s[0], kv_heads, heads / kv_heads, s[2], s[3]}).reshape({s[0], heads, s[2], s[3]});
}

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const Pattern& pattern, Probe* probe) {
  return detail::attend_impl(detail::kAttendPrefix, q, k, v, pattern, probe).out;
}

AttendResult attend_lse(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const Pattern& pattern, Probe* probe) {
  return detail::attend_impl(detail::kAttendPrefix, q, k, v, pattern, probe);
}

std::vector<BackendChoice> backend_choices(const at::Tensor& q, const at::Tensor& k,
                                           const at::Tensor& v, const Pattern& pattern) {
  detail::check_attend("sparsescope::backend_choices: ", q, k, v, pattern);
  const detail::AttendParams params{q, k, v, pattern, detail::resolve_scale(q, pattern)};
  std::vector<BackendChoice> choices;
  for (const detail::Backend& backend : detail::backends()) {
    BackendChoice choice;
    choice.name = backend.name;
    choice.usable = backend.can_use(params, &choice.why_not);
    choices.push_back(std::move(choice));
  }
  return choices;
}

}  // namespace sparsescope
