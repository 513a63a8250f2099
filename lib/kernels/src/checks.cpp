#include "checks.h"

#include <ATen/ATen.h>

#include <sstream>
#include <string>
#include <vector>

#include "mask.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::detail {
namespace {

std::string dtype_name(at::ScalarType type) { return c10::getDtypeNames(type).first; }

std::string dtype_list(const std::vector<at::ScalarType>& allowed) {
  std::string out;
  for (size_t i = 0; i < allowed.size(); ++i) {
    if (i > 0) out += i + 1 == allowed.size() ? " or " : ", ";
    out += dtype_name(allowed[i]);
  }
  return out;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr int64_t kAny = -1;  // batch/heads of materialize(): taken from the pattern itself

// One tensor argument with the dtypes it may have; patterns contribute theirs recursively, so the
// phases below walk every tensor of the call in one fixed order.
struct Arg {
  std::string name;
  const at::Tensor* tensor;
  std::vector<at::ScalarType> dtypes;
  bool required;
  const char* dtype_note = nullptr;  // why the dtype is required, when it is another argument's
};

void collect(const Pattern& pattern, const std::string& scope,
             const std::vector<at::ScalarType>& mask_dtypes, std::vector<Arg>& args) {
  if (const auto* p = std::get_if<Dense>(&pattern)) {
    args.push_back({scope + "Dense.mask", &p->mask, mask_dtypes, false});
  } else if (const auto* p = std::get_if<BlockSparse>(&pattern)) {
    args.push_back({scope + "BlockSparse.kv_count", &p->kv_count, {at::kInt}, true});
    args.push_back({scope + "BlockSparse.kv_index", &p->kv_index, {at::kInt}, true});
    const bool full = p->full_kv_count.defined() || p->full_kv_index.defined();
    args.push_back({scope + "BlockSparse.full_kv_count", &p->full_kv_count, {at::kInt}, full});
    args.push_back({scope + "BlockSparse.full_kv_index", &p->full_kv_index, {at::kInt}, full});
  } else if (const auto* p = std::get_if<TopK>(&pattern)) {
    args.push_back({scope + "TopK.index", &p->index, {at::kLong}, true});
  } else if (const auto* p = std::get_if<Permuted>(&pattern)) {
    args.push_back({scope + "Permuted.perm", &p->perm, {at::kLong}, true});
    args.push_back({scope + "Permuted.inverse", &p->inverse, {at::kLong}, true});
    args.push_back({scope + "Permuted.kv_perm", &p->kv_perm, {at::kLong}, false});
    if (p->inner) collect(*p->inner, scope + "Permuted.inner.", mask_dtypes, args);
  }
}

// Device, dtype and layout of every argument, each phase over all arguments before the next.
void check_tensors(const char* prefix, const std::vector<Arg>& args, at::Device device,
                   const char* device_of) {
  for (const Arg& a : args)
    if (a.required) check_defined(prefix, a.name.c_str(), *a.tensor);
  for (const Arg& a : args)
    if (a.tensor->defined()) check_device(prefix, a.name.c_str(), *a.tensor, device, device_of);
  for (const Arg& a : args) {
    if (!a.tensor->defined()) continue;
    bool ok = false;
    for (at::ScalarType t : a.dtypes) ok = ok || a.tensor->scalar_type() == t;
    SPARSESCOPE_CHECK(ok, prefix, "expected `", a.name, "` of dtype ", dtype_list(a.dtypes),
                      a.dtype_note ? " (" : "", a.dtype_note ? a.dtype_note : "",
                      a.dtype_note ? ")" : "", ", got ", dtype_name(a.tensor->scalar_type()),
                      " tensor ", shape_string(a.tensor->sizes()));
  }
  for (const Arg& a : args)
    if (a.tensor->defined()) check_strided(prefix, a.name.c_str(), *a.tensor);
}

std::string from(const char* symbol, int64_t value, const char* source) {
  std::ostringstream out;
  out << symbol << " = " << value << " (" << source << ")";
  return out.str();
}

// Batch and head sizes of a pattern tensor: those of the problem, or 1.
void check_batch_heads(const char* prefix, const std::string& name, const at::Tensor& t,
                       const char* layout, int64_t batch, int64_t heads, const char* source) {
  if (batch != kAny) check_size(prefix, name.c_str(), t, layout, 0, batch, from("B", batch, source), true);
  if (heads != kAny) check_size(prefix, name.c_str(), t, layout, 1, heads, from("H", heads, source), true);
}

void check_block_pair(const char* prefix, const std::string& scope, const char* count_field,
                      const char* index_field, const at::Tensor& count, const at::Tensor& index,
                      int64_t q_blocks, int64_t n, int64_t block_q, int64_t batch, int64_t heads,
                      const char* source) {
  const std::string count_name = scope + "BlockSparse." + count_field;
  const std::string index_name = scope + "BlockSparse." + index_field;
  const char* count_layout = "[B|1, H|1, ceil(N / block_q)]";
  const char* index_layout = "[B|1, H|1, ceil(N / block_q), W]";
  std::ostringstream rows;
  rows << "ceil(N / block_q) = " << q_blocks << " (N = " << n << ", block_q = " << block_q << ")";
  check_dim(prefix, count_name.c_str(), count, 3, count_layout);
  check_batch_heads(prefix, count_name, count, count_layout, batch, heads, source);
  check_size(prefix, count_name.c_str(), count, count_layout, 2, q_blocks, rows.str());
  check_dim(prefix, index_name.c_str(), index, 4, index_layout);
  const std::string as_count = "`" + count_name + "`";
  check_size(prefix, index_name.c_str(), index, index_layout, 0, count.size(0),
             from("B", count.size(0), ("as " + as_count).c_str()));
  check_size(prefix, index_name.c_str(), index, index_layout, 1, count.size(1),
             from("H", count.size(1), ("as " + as_count).c_str()));
  check_size(prefix, index_name.c_str(), index, index_layout, 2, q_blocks, rows.str());
}

void check_shapes(const char* prefix, const Pattern& pattern, const std::string& scope, int64_t n,
                  int64_t m, int64_t batch, int64_t heads, const char* source) {
  if (const auto* p = std::get_if<Dense>(&pattern)) {
    if (!p->mask.defined()) return;
    const std::string name = scope + "Dense.mask";
    const char* layout = "[B|1, H|1, N, M]";
    check_dim(prefix, name.c_str(), p->mask, 4, layout);
    check_batch_heads(prefix, name, p->mask, layout, batch, heads, source);
    check_size(prefix, name.c_str(), p->mask, layout, 2, n, from("N", n, source));
    check_size(prefix, name.c_str(), p->mask, layout, 3, m, from("M", m, source));
  } else if (const auto* p = std::get_if<BlockSparse>(&pattern)) {
    SPARSESCOPE_CHECK(p->block_q >= 1 && p->block_k >= 1, prefix, "expected `", scope,
                      "BlockSparse` block sizes >= 1, got block_q = ", p->block_q,
                      ", block_k = ", p->block_k);
    const int64_t q_blocks = ceil_div(n, p->block_q);
    check_block_pair(prefix, scope, "kv_count", "kv_index", p->kv_count, p->kv_index, q_blocks, n,
                     p->block_q, batch, heads, source);
    if (p->full_kv_count.defined())
      check_block_pair(prefix, scope, "full_kv_count", "full_kv_index", p->full_kv_count,
                       p->full_kv_index, q_blocks, n, p->block_q, batch, heads, source);
  } else if (const auto* p = std::get_if<TopK>(&pattern)) {
    const std::string name = scope + "TopK.index";
    const char* layout = "[B|1, H|1, N, K]";
    check_dim(prefix, name.c_str(), p->index, 4, layout);
    check_batch_heads(prefix, name, p->index, layout, batch, heads, source);
    check_size(prefix, name.c_str(), p->index, layout, 2, n, from("N", n, source));
  } else if (const auto* p = std::get_if<Neighborhood>(&pattern)) {
    const std::string name = scope + "Neighborhood";
    const size_t rank = p->grid.size();
    SPARSESCOPE_CHECK(rank >= 1 && rank <= 3, prefix, "expected `", name,
                      ".grid` of 1 to 3 extents (T, H, W), got ", rank);
    SPARSESCOPE_CHECK(p->kernel.size() == rank, prefix, "expected `", name, ".kernel` of ", rank,
                      " values (one per grid axis), got ", p->kernel.size());
    SPARSESCOPE_CHECK(p->dilation.empty() || p->dilation.size() == rank, prefix, "expected `", name,
                      ".dilation` empty or of ", rank, " values, got ", p->dilation.size());
    SPARSESCOPE_CHECK(p->causal.empty() || p->causal.size() == rank, prefix, "expected `", name,
                      ".causal` empty or of ", rank, " values, got ", p->causal.size());
    int64_t tokens = 1;
    for (size_t axis = 0; axis < rank; ++axis) {
      const int64_t extent = p->grid[axis];
      const int64_t kernel = p->kernel[axis];
      const int64_t dilation = p->dilation.empty() ? 1 : p->dilation[axis];
      SPARSESCOPE_CHECK(extent >= 1, prefix, "expected `", name, ".grid` extents >= 1, got ",
                        extent, " on axis ", axis);
      SPARSESCOPE_CHECK(kernel >= 1 && dilation >= 1 && kernel * dilation <= extent, prefix,
                        "expected `", name, "` kernel >= 1, dilation >= 1 and kernel * dilation <= ",
                        "grid extent on axis ", axis, ", got kernel ", kernel, ", dilation ",
                        dilation, ", extent ", extent);
      tokens *= extent;
    }
    SPARSESCOPE_CHECK(tokens == n && tokens == m, prefix, "expected `", name,
                      ".grid` to cover the N = ", n, " queries and M = ", m,
                      " keys (self-attention), got ", tokens, " grid cells");
  } else if (const auto* p = std::get_if<Permuted>(&pattern)) {
    const std::string perm = scope + "Permuted.perm";
    const std::string inverse = scope + "Permuted.inverse";
    const char* layout = "[B|1, H|1, N]";
    check_dim(prefix, perm.c_str(), p->perm, 3, layout);
    check_batch_heads(prefix, perm, p->perm, layout, batch, heads, source);
    check_size(prefix, perm.c_str(), p->perm, layout, 2, n, from("N", n, source));
    check_dim(prefix, inverse.c_str(), p->inverse, 3, layout);
    SPARSESCOPE_CHECK(p->inverse.sizes() == p->perm.sizes(), prefix, "expected `", inverse,
                      "` of the shape of `", perm, "` ", shape_string(p->perm.sizes()), ", got ",
                      shape_string(p->inverse.sizes()));
    if (p->kv_perm.defined()) {
      const std::string kv = scope + "Permuted.kv_perm";
      const char* kv_layout = "[B|1, H|1, M]";
      check_dim(prefix, kv.c_str(), p->kv_perm, 3, kv_layout);
      check_batch_heads(prefix, kv, p->kv_perm, kv_layout, batch, heads, source);
      check_size(prefix, kv.c_str(), p->kv_perm, kv_layout, 2, m, from("M", m, source));
    } else {
      SPARSESCOPE_CHECK(n == m, prefix, "`", scope, "Permuted` without kv_perm permutes queries and ",
                        "keys alike and needs N = M, got N = ", n, ", M = ", m);
    }
    SPARSESCOPE_CHECK(p->inner != nullptr, prefix, "expected a pattern for `", scope,
                      "Permuted.inner`, got none");
    check_shapes(prefix, *p->inner, scope + "Permuted.inner.", n, m, batch, heads, source);
  }
}

// The coordinates of the first true element of `bad`; empty when there is none.
std::vector<int64_t> first_true(const at::Tensor& bad) {
  const at::Tensor hits = bad.nonzero();
  if (hits.size(0) == 0) return {};
  const at::Tensor first = hits[0].contiguous();
  return {first.data_ptr<int64_t>(), first.data_ptr<int64_t>() + first.numel()};
}

int64_t value_at(at::Tensor t, const std::vector<int64_t>& coords) {
  for (int64_t c : coords) t = t.select(0, c);
  return t.item<int64_t>();
}

// Where index tensors are on the CPU their values cost nothing to check; on a GPU they would cost
// a device sync per call, so kernels trust them there (as SDPA and FlexAttention do).
void check_values(const char* prefix, const Pattern& pattern, const std::string& scope, int64_t n,
                  int64_t m) {
  if (const auto* p = std::get_if<BlockSparse>(&pattern)) {
    const int64_t k_blocks = ceil_div(m, p->block_k);
    auto check_pair = [&](const char* count_field, const char* index_field, const at::Tensor& count,
                          const at::Tensor& index) {
      const int64_t width = index.size(3);
      const auto bad_count = first_true((count < 0).logical_or(count > width));
      SPARSESCOPE_CHECK(bad_count.empty(), prefix, "`", scope, "BlockSparse.", count_field,
                        "` holds ", value_at(count, bad_count), " at ", shape_string(bad_count),
                        ", outside [0, W = ", width, "]");
      const at::Tensor listed = at::arange(width, count.options()) < count.unsqueeze(-1);
      const auto bad = first_true(listed.logical_and((index < 0).logical_or(index >= k_blocks)));
      SPARSESCOPE_CHECK(bad.empty(), prefix, "`", scope, "BlockSparse.", index_field,
                        "` lists key block ", value_at(index, bad), " at ", shape_string(bad),
                        ", outside [0, ceil(M / block_k) = ", k_blocks, ") (M = ", m,
                        ", block_k = ", p->block_k, ")");
    };
    check_pair("kv_count", "kv_index", p->kv_count, p->kv_index);
    if (p->full_kv_count.defined())
      check_pair("full_kv_count", "full_kv_index", p->full_kv_count, p->full_kv_index);
  } else if (const auto* p = std::get_if<TopK>(&pattern)) {
    const auto bad = first_true((p->index < mask::kNoKey).logical_or(p->index >= m));
    SPARSESCOPE_CHECK(bad.empty(), prefix, "`", scope, "TopK.index` holds key ",
                      value_at(p->index, bad), " at ", shape_string(bad), ", outside [-1, M = ", m,
                      ")");
  } else if (const auto* p = std::get_if<Permuted>(&pattern)) {
    auto check_perm = [&](const char* field, const at::Tensor& perm) {
      const int64_t len = perm.size(2);
      const bool ok = std::get<0>(perm.sort(-1)).eq(at::arange(len, perm.options())).all().item<bool>();
      SPARSESCOPE_CHECK(ok, prefix, "`", scope, "Permuted.", field, "` is not a permutation of 0..",
                        len - 1, " in every (batch, head) row");
    };
    check_perm("perm", p->perm);
    const bool inverse_ok =
        p->inverse.gather(-1, p->perm).eq(at::arange(n, p->perm.options())).all().item<bool>();
    SPARSESCOPE_CHECK(inverse_ok, prefix, "`", scope, "Permuted.inverse` is not the inverse of `",
                      scope, "Permuted.perm` (inverse[perm[a]] != a)");
    if (p->kv_perm.defined()) check_perm("kv_perm", p->kv_perm);
    check_values(prefix, *p->inner, scope + "Permuted.inner.", n, m);
  }
}

}  // namespace

std::string shape_string(at::IntArrayRef sizes) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
  out << "]";
  return out.str();
}

void check_defined(const char* prefix, const char* name, const at::Tensor& t) {
  SPARSESCOPE_CHECK(t.defined(), prefix, "expected a tensor for `", name, "`, got none");
}

void check_device(const char* prefix, const char* name, const at::Tensor& t, at::Device device,
                  const char* device_of) {
  SPARSESCOPE_CHECK(t.device() == device, prefix, "expected `", name, "` on ", device.str(), " (",
                    device_of, "), got tensor ", shape_string(t.sizes()), " on ", t.device().str());
}

void check_strided(const char* prefix, const char* name, const at::Tensor& t) {
  SPARSESCOPE_CHECK(t.layout() == at::kStrided, prefix, "expected strided `", name, "`, got ",
                    t.layout(), " tensor ", shape_string(t.sizes()));
}

void check_dim(const char* prefix, const char* name, const at::Tensor& t, int64_t dim,
               const char* layout) {
  SPARSESCOPE_CHECK(t.dim() == dim, prefix, "expected ", dim, "-D `", name, "` ", layout, ", got ",
                    t.dim(), "-D tensor ", shape_string(t.sizes()));
}

void check_size(const char* prefix, const char* name, const at::Tensor& t, const char* layout,
                int64_t dim, int64_t expected, const std::string& what, bool broadcast) {
  const int64_t size = t.size(dim);
  SPARSESCOPE_CHECK(size == expected || (broadcast && size == 1), prefix, "expected `", name, "` ",
                    layout, " with ", what, broadcast ? " or 1" : "", ", got tensor ",
                    shape_string(t.sizes()));
}

void check_attend(const char* prefix, const at::Tensor& q, const at::Tensor& k,
                  const at::Tensor& v, const Pattern& pattern) {
  check_defined(prefix, "query", q);
  const char* same = "the dtype of `query`";
  std::vector<Arg> args = {
      {"query", &q, {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}, true},
      {"key", &k, {q.scalar_type()}, true, same},
      {"value", &v, {q.scalar_type()}, true, same},
  };
  collect(pattern, "", {at::kBool, q.scalar_type()}, args);
  check_tensors(prefix, args, q.device(), "the device of `query`");

  check_dim(prefix, "query", q, 4, "[B, H, N, D]");
  check_dim(prefix, "key", k, 4, "[B, H, M, D]");
  check_dim(prefix, "value", v, 4, "[B, H, M, Dv]");
  const int64_t batch = q.size(0), heads = q.size(1), n = q.size(2), m = k.size(2);
  const char* k_layout = "[B, H, M, D]";
  const char* v_layout = "[B, H, M, Dv]";
  const int64_t kv_heads = k.size(1);
  check_size(prefix, "key", k, k_layout, 0, batch, from("B", batch, "from `query`"));
  // Grouped-query attention: each K/V head serves heads / H_kv consecutive query heads.
  SPARSESCOPE_CHECK(kv_heads == heads || (kv_heads >= 1 && heads % kv_heads == 0), prefix, "expected `key` [B, H_kv, M, D]",
                    " with H_kv dividing H = ", heads, " (from `query`), got tensor ", shape_string(k.sizes()));
  check_size(prefix, "key", k, k_layout, 3, q.size(3), from("D", q.size(3), "from `query`"));
  check_size(prefix, "value", v, v_layout, 0, batch, from("B", batch, "from `query`"));
  check_size(prefix, "value", v, v_layout, 1, kv_heads, from("H", kv_heads, "from `key`"));
  check_size(prefix, "value", v, v_layout, 2, m, from("M", m, "from `key`"));
  check_shapes(prefix, pattern, "", n, m, batch, heads, "from `query`");

  if (q.device().is_cpu()) check_values(prefix, pattern, "", n, m);
}

void check_pattern(const char* prefix, const Pattern& pattern, int64_t n, int64_t m) {
  SPARSESCOPE_CHECK(n >= 0 && m >= 0, prefix, "expected n >= 0 queries and m >= 0 keys, got n = ", n,
                    ", m = ", m);
  std::vector<Arg> args;
  collect(pattern, "", {at::kBool, at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}, args);
  at::Device device = at::kCPU;
  for (const Arg& a : args)
    if (a.tensor->defined()) {
      device = a.tensor->device();
      break;
    }
  check_tensors(prefix, args, device, "the device of the pattern's first tensor");
  check_shapes(prefix, pattern, "", n, m, kAny, kAny, "the problem");
  if (device.is_cpu()) check_values(prefix, pattern, "", n, m);
}

}  // namespace sparsescope::detail
