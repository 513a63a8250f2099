// Note [Fused CUDA backends]
//
// The host side of the kernels in src/cuda/: predicates that accept a call only when a kernel
// computes it exactly as the reference would (same keys per query, same LSE convention), the
// FwdParams they fill, and autograd.
//
// Autograd: when a gradient is needed, FusedAttention (a torch::autograd::Function) runs the
// kernel in its forward and saves q, k, v, out and LSE. Its backward runs the fused backward
// kernels (cuda/backward/: flash-attention-2's, from the saved LSE; cuda/topk/topk_bwd.cuh) for
// Dense without Dense.mask, BlockSparse and TopK, Permuted over them included; for the other
// patterns it recomputes the reference backend (behind the generic lowering for a Permuted) on the
// saved inputs with autograd on and differentiates that (masked attention through ATen,
// O(N x listed keys) memory). A Dense bias is an input of the Function too, so that its gradient
// flows. Without a gradient to record the kernel is called directly.
//
// With SPARSESCOPE_WGMMA=1, on an sm_90 device, Dense, BlockSparse (128-multiple blocks) and
// Neighborhood forwards, a Permuted's included, run the Hopper kernel (Note [Hopper forward],
// cuda/hopper/); everything else runs the mma.sync kernels.
//
// Permuted over Dense, BlockSparse, TopK or Neighborhood runs the inner pattern's kernel with the
// permutation fused into its loads and stores (FwdParams.q_perm, kv_perm): no gathered copies of
// q, k, v and no scatter of the output.
#include "cuda_backend.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "cuda/common/launch.h"
#include "cuda/common/static_switch.h"
#include "reference/reference.h"
#include "sparsescope/kernels/block_mask.h"

namespace sparsescope::cuda_backend {

int arch_of(int device) {
  static std::mutex mutex;
  static std::unordered_map<int, int> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto it = cache.find(device);
  if (it != cache.end()) return it->second;
  const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  return cache[device] = cuda::loadable_arch();
}

namespace {

using detail::AttendParams;

// Whether the Hopper forward (cuda/hopper/) takes a Dense, BlockSparse or Neighborhood call on q's device: built
// in, an sm_90 device, and asked for with SPARSESCOPE_WGMMA=1 (opt-in until the kernel has passed
// the GPU tests; README.md, "Attention kernels and the GPU").
bool use_sm90(const AttendParams& a) {
#if defined(SPARSESCOPE_WITH_SM90)
  const char* env = std::getenv("SPARSESCOPE_WGMMA");
  if (env == nullptr || std::string(env) != "1") return false;
  static std::mutex mutex;
  static std::unordered_map<int, bool> cache;
  const int device = a.q.get_device();
  const std::lock_guard<std::mutex> lock(mutex);
  const auto it = cache.find(device);
  if (it != cache.end()) return it->second;
  return cache[device] = cuda::sm90_fwd_loadable();
#else
  (void)a;
  return false;
#endif
}

bool refuse(std::string* why_not, std::string reason) {
  if (why_not) *why_not = std::move(reason);
  return false;
}

int smem_optin(int device) {
  return static_cast<int>(at::cuda::getDeviceProperties(device)->sharedMemPerBlockOptin);
}

// Whether `bytes` of shared memory (what `what` needs) fit q's device.
bool fits_smem(const AttendParams& a, int64_t bytes, const std::string& what, std::string* why_not) {
  const int optin = smem_optin(a.q.get_device());
  if (bytes <= optin) return true;
  return refuse(why_not, what + " need " + std::to_string(bytes) + " bytes of shared memory, more than the device's " +
                             std::to_string(optin));
}

// The last dim contiguous, the other strides and the base address 16-byte aligned: every row the
// kernels read comes in 16-byte chunks.
bool aligned_rows(const char* name, const at::Tensor& t, std::string* why_not) {
  if (t.stride(3) != 1)
    return refuse(why_not, std::string("`") + name + "` has stride " + std::to_string(t.stride(3)) +
                               " along its last dim, the kernels need 1");
  for (int dim = 0; dim < 3; ++dim)
    if (t.size(dim) > 1 && t.stride(dim) % 8 != 0)
      return refuse(why_not, std::string("`") + name + "` stride " + std::to_string(t.stride(dim)) +
                                 " along dim " + std::to_string(dim) +
                                 " is not a multiple of 8 elements (16 bytes)");
  if (reinterpret_cast<std::uintptr_t>(t.data_ptr()) % 16 != 0)
    return refuse(why_not, std::string("`") + name + "` data is not 16-byte aligned");
  return true;
}

// What every fused kernel needs, in check order: device, architecture, dtype, scale, head dim,
// strides, sizes.
bool can_use_common(const AttendParams& a, std::string* why_not) {
  if (!a.q.is_cuda())
    return refuse(why_not, "`query` is on " + a.q.device().str() + ", not a CUDA device");
  const int device = a.q.get_device();
  const int arch = arch_of(device);
  if (arch == 0)
    return refuse(why_not, "this build has no kernel image for " + a.q.device().str() +
                               " (TORCH_CUDA_ARCH_LIST left its architecture out)");
  if (arch < 80)
    return refuse(why_not, "needs sm_80 or newer for bf16 mma.sync, device runs sm_" +
                               std::to_string(arch));
  if (a.q.scalar_type() != at::kHalf && a.q.scalar_type() != at::kBFloat16)
    return refuse(why_not, std::string("dtype ") + c10::toString(a.q.scalar_type()) +
                               ", the kernels take float16 or bfloat16");
  if (!(a.scale > 0))
    return refuse(why_not, "scale " + std::to_string(a.scale) +
                               "; the kernels take the row maximum of unscaled scores and need scale > 0");
  const int64_t d = a.q.size(3), dv = a.v.size(3);
  if (d != dv || (d != 64 && d != 128))
    return refuse(why_not, "head dims D = " + std::to_string(d) + ", Dv = " + std::to_string(dv) +
                               ", the kernels take D = Dv = 64 or 128");
  if (!aligned_rows("query", a.q, why_not) || !aligned_rows("key", a.k, why_not) ||
      !aligned_rows("value", a.v, why_not))
    return false;
  const int64_t batch = a.q.size(0), heads = a.q.size(1), n = a.q.size(2), m = a.k.size(2);
  if (batch == 0 || heads == 0 || n == 0 || m == 0)
    return refuse(why_not, "empty problem (B, H, N or M is 0)");
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  if (n > kIntMax - cuda::kBlockM || m > kIntMax - cuda::kBlockM || batch > 65535 || heads > 65535)
    return refuse(why_not, "sizes past the kernels' grid and int32 token indices");
  return true;
}

int64_t stride_or_zero(const at::Tensor& t, int dim) { return t.size(dim) == 1 ? 0 : t.stride(dim); }

// The pattern a kernel computes: a Permuted's inner (the permutation fused into loads and stores),
// else the pattern itself.
const Pattern& kernel_pattern(const Pattern& pattern) {
  const auto* permuted = std::get_if<Permuted>(&pattern);
  return permuted ? *permuted->inner : pattern;
}

// A permutation [B|1, H|1, L] with a contiguous last dim, as the kernels read it.
at::Tensor rows_of(const at::Tensor& perm) { return perm.stride(2) == 1 ? perm : perm.contiguous(); }

// Fills what every kernel reads (q, k, v, sizes, scale, a Permuted's permutation) but the outputs;
// returns the permutations as the kernels read them, which must live until the launch is enqueued
// (the caching allocator orders later reuse after it).
std::pair<at::Tensor, at::Tensor> fill_inputs(const AttendParams& a, cuda::FwdParams& p) {
  const at::Tensor& q = a.q;
  p.q = q.data_ptr();
  p.k = a.k.data_ptr();
  p.v = a.v.data_ptr();
  p.q_batch_stride = q.stride(0);
  p.q_head_stride = q.stride(1);
  p.q_row_stride = q.stride(2);
  p.k_batch_stride = a.k.stride(0);
  p.k_head_stride = a.k.stride(1);
  p.k_row_stride = a.k.stride(2);
  p.v_batch_stride = a.v.stride(0);
  p.v_head_stride = a.v.stride(1);
  p.v_row_stride = a.v.stride(2);
  p.batch = static_cast<int>(q.size(0));
  p.heads = static_cast<int>(q.size(1));
  p.kv_group = static_cast<int>(q.size(1) / a.k.size(1));
  p.n = static_cast<int>(q.size(2));
  p.m = static_cast<int>(a.k.size(2));
  p.scale_log2 = static_cast<float>(a.scale * 1.4426950408889634);
  const auto* permuted = std::get_if<Permuted>(&a.pattern);
  if (!permuted) return {};
  at::Tensor q_perm = rows_of(permuted->perm);
  at::Tensor kv_perm = rows_of(permuted->kv_perm.defined() ? permuted->kv_perm : permuted->perm);
  p.q_perm = q_perm.data_ptr<int64_t>();
  p.kv_perm = kv_perm.data_ptr<int64_t>();
  p.q_perm_batch_stride = stride_or_zero(q_perm, 0);
  p.q_perm_head_stride = stride_or_zero(q_perm, 1);
  p.kv_perm_batch_stride = stride_or_zero(kv_perm, 0);
  p.kv_perm_head_stride = stride_or_zero(kv_perm, 1);
  return {q_perm, kv_perm};
}

// FwdParams' TopK fields of `pattern`.
void fill_topk(const TopK& pattern, cuda::FwdParams& p) {
  const at::Tensor& index = pattern.index;
  p.topk_index = index.data_ptr<int64_t>();
  p.topk_batch_stride = stride_or_zero(index, 0);
  p.topk_head_stride = stride_or_zero(index, 1);
  p.topk_row_stride = index.stride(2);
  p.topk_col_stride = index.stride(3);
  p.topk_k = static_cast<int>(index.size(3));
  p.topk_table_size = cuda::topk_table_size(p.topk_k);
}

// FwdParams' BlockSparse fields of `pattern` for M keys.
void fill_block_sparse(const BlockSparse& bs, int64_t m, cuda::FwdParams& p) {
  p.kv_count = bs.kv_count.data_ptr<int32_t>();
  p.kv_index = bs.kv_index.data_ptr<int32_t>();
  p.count_batch_stride = stride_or_zero(bs.kv_count, 0);
  p.count_head_stride = stride_or_zero(bs.kv_count, 1);
  p.count_row_stride = bs.kv_count.stride(2);
  p.index_batch_stride = stride_or_zero(bs.kv_index, 0);
  p.index_head_stride = stride_or_zero(bs.kv_index, 1);
  p.index_row_stride = bs.kv_index.stride(2);
  p.index_col_stride = bs.kv_index.stride(3);
  p.index_width = static_cast<int>(bs.kv_index.size(3));
  if (bs.full_kv_count.defined()) {
    p.full_kv_count = bs.full_kv_count.data_ptr<int32_t>();
    p.full_kv_index = bs.full_kv_index.data_ptr<int32_t>();
    p.full_count_batch_stride = stride_or_zero(bs.full_kv_count, 0);
    p.full_count_head_stride = stride_or_zero(bs.full_kv_count, 1);
    p.full_count_row_stride = bs.full_kv_count.stride(2);
    p.full_index_batch_stride = stride_or_zero(bs.full_kv_index, 0);
    p.full_index_head_stride = stride_or_zero(bs.full_kv_index, 1);
    p.full_index_row_stride = bs.full_kv_index.stride(2);
    p.full_index_col_stride = bs.full_kv_index.stride(3);
    p.full_index_width = static_cast<int>(bs.full_kv_index.size(3));
  }
  p.block_q = static_cast<int>(bs.block_q);
  p.block_k = static_cast<int>(bs.block_k);
  p.num_k_blocks = static_cast<int>((m + bs.block_k - 1) / bs.block_k);
}

// Calls run(is_bf16, head_dim) with std::integral_constants of q's dtype and head dim, the
// template arguments of the kernels' entry points.
template <typename Run>
void dispatch_kernel(const at::Tensor& q, Run run) {
  SPARSESCOPE_BOOL_SWITCH(q.scalar_type() == at::kBFloat16, kIsBf16, [&] {
    SPARSESCOPE_HEADDIM_SWITCH(q.size(3), kHeadDim, [&] {
      run(std::bool_constant<kIsBf16>{}, std::integral_constant<int, kHeadDim>{});
    });
  });
}

// A forward kernel's outputs, and `launch(is_bf16, head_dim, params, stream)` (as dispatch_kernel
// calls it) on the current stream of q's device.
template <typename Launch>
AttendResult launch_fwd(const AttendParams& a, cuda::FwdParams& p, Launch launch) {
  const at::Tensor& q = a.q;
  at::Tensor out = at::empty(q.sizes(), q.options());  // contiguous, as the kernels write it
  at::Tensor lse = at::empty({q.size(0), q.size(1), q.size(2)}, q.options().dtype(at::kFloat));
  const auto permutations = fill_inputs(a, p);
  p.out = out.data_ptr();
  p.lse = lse.data_ptr<float>();
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream(q.get_device()).stream();
  dispatch_kernel(q, [&](auto is_bf16, auto head_dim) { launch(is_bf16, head_dim, p, stream); });
  return {out, lse};
}

// The Hopper forward of a Dense, BlockSparse or Neighborhood call (use_sm90 said yes).
AttendResult sm90_fwd(const AttendParams& a, cuda::FwdParams& p, cuda::Sm90Pattern pattern) {
#if defined(SPARSESCOPE_WITH_SM90)
  return launch_fwd(a, p, [pattern](auto bf16, auto dim, const cuda::FwdParams& params, cudaStream_t s) {
    cuda::run_sm90_fwd<decltype(bf16)::value, decltype(dim)::value>(params, pattern, s);
  });
#else
  (void)a, (void)p, (void)pattern;
  TORCH_INTERNAL_ASSERT(false, "the Hopper forward is not in this build (SPARSESCOPE_SM90=OFF)");
#endif
}

AttendResult dense_fwd(const AttendParams& a) {
  const c10::cuda::CUDAGuard guard(a.q.device());
  cuda::FwdParams p{};
  const Dense& dense = std::get<Dense>(kernel_pattern(a.pattern));
  p.causal = dense.causal;
  if (dense.mask.defined()) {
    p.mask = dense.mask.data_ptr();
    p.mask_is_bool = dense.mask.scalar_type() == at::kBool;
    p.mask_batch_stride = stride_or_zero(dense.mask, 0);
    p.mask_head_stride = stride_or_zero(dense.mask, 1);
    p.mask_row_stride = dense.mask.stride(2);
    p.mask_col_stride = dense.mask.stride(3);
    p.inv_scale = static_cast<float>(1.0 / a.scale);
    const at::Tensor& mask = dense.mask;
    p.mask_staged = !p.mask_is_bool && mask.stride(3) == 1 && mask.size(3) % 8 == 0 && p.mask_row_stride % 8 == 0 &&
                    p.mask_batch_stride % 8 == 0 && p.mask_head_stride % 8 == 0 &&
                    reinterpret_cast<std::uintptr_t>(mask.data_ptr()) % 16 == 0;
  }
  if (use_sm90(a)) return sm90_fwd(a, p, cuda::Sm90Pattern::kDense);
  return launch_fwd(a, p, [](auto bf16, auto dim, const cuda::FwdParams& params, cudaStream_t s) {
    cuda::run_dense_fwd<decltype(bf16)::value, decltype(dim)::value>(params, s);
  });
}

AttendResult block_sparse_fwd(const AttendParams& a) {
  const c10::cuda::CUDAGuard guard(a.q.device());
  const auto& bs = std::get<BlockSparse>(kernel_pattern(a.pattern));
  cuda::FwdParams p{};
  fill_block_sparse(bs, a.k.size(2), p);
  if (bs.block_q % cuda::kSm90BlockM == 0 && bs.block_k % cuda::kSm90BlockN == 0 &&
      cuda::sm90_smem_bytes(static_cast<int>(a.q.size(3))) + cuda::block_list_smem_bytes(p.num_k_blocks) <=
          smem_optin(a.q.get_device()) &&
      use_sm90(a))
    return sm90_fwd(a, p, cuda::Sm90Pattern::kBlockSparse);
  return launch_fwd(a, p, [](auto bf16, auto dim, const cuda::FwdParams& params, cudaStream_t s) {
    cuda::run_block_sparse_fwd<decltype(bf16)::value, decltype(dim)::value>(params, s);
  });
}

AttendResult topk_fwd(const AttendParams& a) {
  const c10::cuda::CUDAGuard guard(a.q.device());
  cuda::FwdParams p{};
  fill_topk(std::get<TopK>(kernel_pattern(a.pattern)), p);
  const int64_t m = a.k.size(2);
  if (cuda::topk_union_pays(p.topk_k, m) &&
      cuda::topk_union_smem_bytes(static_cast<int>(a.q.size(3)), m) <= smem_optin(a.q.get_device())) {
    return launch_fwd(a, p, [](auto bf16, auto dim, const cuda::FwdParams& params, cudaStream_t s) {
      cuda::run_topk_union_fwd<decltype(bf16)::value, decltype(dim)::value>(params, s);
    });
  }
  return launch_fwd(a, p, [](auto bf16, auto dim, const cuda::FwdParams& params, cudaStream_t s) {
    cuda::run_topk_fwd<decltype(bf16)::value, decltype(dim)::value>(params, s);
  });
}

AttendResult neighborhood_fwd(const AttendParams& a) {
  const c10::cuda::CUDAGuard guard(a.q.device());
  const auto& nb = std::get<Neighborhood>(kernel_pattern(a.pattern));
  cuda::FwdParams p{};
  // The grid padded at the front to 3 axes of extent 1 (each sees its one coordinate).
  const size_t pad = 3 - nb.grid.size();
  int64_t stride = 1;
  for (size_t i = 3; i-- > 0;) {
    const bool real = i >= pad;
    const size_t j = i - pad;
    p.nb_extent[i] = real ? static_cast<int>(nb.grid[j]) : 1;
    p.nb_kernel[i] = real ? static_cast<int>(nb.kernel[j]) : 1;
    p.nb_dilation[i] = real && !nb.dilation.empty() ? static_cast<int>(nb.dilation[j]) : 1;
    p.nb_causal[i] = real && !nb.causal.empty() && nb.causal[j];
    p.nb_stride[i] = cuda::fast_divisor(static_cast<uint32_t>(stride));
    stride *= p.nb_extent[i];
  }
  const auto sm90_tiles = static_cast<int>((a.k.size(2) + cuda::kSm90BlockN - 1) / cuda::kSm90BlockN);
  if (cuda::sm90_smem_bytes(static_cast<int>(a.q.size(3))) + cuda::sm90_neighborhood_smem_bytes(sm90_tiles) <=
          smem_optin(a.q.get_device()) &&
      use_sm90(a)) {
    p.num_k_blocks = sm90_tiles;
    return sm90_fwd(a, p, cuda::Sm90Pattern::kNeighborhood);
  }
  p.num_k_blocks = static_cast<int>((a.k.size(2) + cuda::kBlockN - 1) / cuda::kBlockN);
  return launch_fwd(a, p, [](auto bf16, auto dim, const cuda::FwdParams& params, cudaStream_t s) {
    cuda::run_neighborhood_fwd<decltype(bf16)::value, decltype(dim)::value>(params, s);
  });
}

// A Permuted call on its inner pattern's kernel (cuda_backend::can_use_permuted has checked it).
AttendResult permuted_fwd(const AttendParams& a) {
  const Pattern& inner = kernel_pattern(a.pattern);
  if (std::holds_alternative<Dense>(inner)) return dense_fwd(a);
  if (std::holds_alternative<BlockSparse>(inner)) return block_sparse_fwd(a);
  if (std::holds_alternative<TopK>(inner)) return topk_fwd(a);
  return neighborhood_fwd(a);
}

// ---- Fused backward ----

// Whether a fused backward computes the gradients of a fused forward call. Under
// torch.use_deterministic_algorithms TopK (atomics into dk, dv) is left to the reference, and the
// BlockSparse dQ pass needs its key-block list to fit beside the tiles.
bool has_fused_backward(const AttendParams& a) {
  const Pattern& inner = kernel_pattern(a.pattern);
  if (const auto* dense = std::get_if<Dense>(&inner)) return !dense->mask.defined();
  const bool deterministic = at::globalContext().deterministicAlgorithms();
  if (std::holds_alternative<TopK>(inner)) return !deterministic;
  const auto* bs = std::get_if<BlockSparse>(&inner);
  if (!bs) return false;  // Neighborhood
  const int64_t k_blocks = (a.k.size(2) + bs->block_k - 1) / bs->block_k;
  return !deterministic || cuda::dq_smem_bytes(static_cast<int>(a.q.size(3))) +
                               int64_t{cuda::block_list_smem_bytes(static_cast<int>(k_blocks))} <=
                               smem_optin(a.q.get_device());
}

// The gradients of q, k and v of a fused forward call (has_fused_backward) from its output and LSE
// and their incoming gradients (either may be undefined).
std::vector<at::Tensor> fused_backward(const AttendParams& a, const at::Tensor& out, const at::Tensor& lse,
                                       const at::Tensor& grad_out, const at::Tensor& grad_lse) {
  const c10::cuda::CUDAGuard guard(a.q.device());
  cuda::BwdParams p{};
  const auto permutations = fill_inputs(a, p.fwd);
  const Pattern& inner = kernel_pattern(a.pattern);
  at::Tensor q_count, q_index;
  const auto* topk = std::get_if<TopK>(&inner);
  if (const auto* dense = std::get_if<Dense>(&inner)) {
    p.fwd.causal = dense->causal;
  } else if (topk) {
    fill_topk(*topk, p.fwd);
  } else {
    // Per key block, the query blocks that see it: the transposed block mask in the same layout.
    const auto& bs = std::get<BlockSparse>(inner);
    const int64_t k_blocks = (a.k.size(2) + bs.block_k - 1) / bs.block_k;
    const BlockSparse by_key = from_block_mask(to_block_mask(bs, k_blocks).transpose(2, 3), bs.block_k, bs.block_q);
    q_count = by_key.kv_count.contiguous();
    q_index = by_key.kv_index.contiguous();
    p.q_count = q_count.data_ptr<int32_t>();
    p.q_index = q_index.data_ptr<int32_t>();
    p.q_count_batch_stride = stride_or_zero(q_count, 0);
    p.q_count_head_stride = stride_or_zero(q_count, 1);
    p.q_index_batch_stride = stride_or_zero(q_index, 0);
    p.q_index_head_stride = stride_or_zero(q_index, 1);
    p.q_index_row_stride = q_index.stride(2);
    fill_block_sparse(bs, a.k.size(2), p.fwd);  // the deterministic dQ pass walks the forward's lists
  }
  at::Tensor dout = grad_out.defined() ? grad_out.to(a.q.scalar_type()) : at::zeros_like(out);
  if (!aligned_rows("grad_out", dout, nullptr)) dout = dout.contiguous();
  // delta = rowsum(dO * O) - dLSE: d lse_i / d s_ij = P_ij folds the LSE's gradient into it.
  at::Tensor delta = (dout.to(at::kFloat) * out.to(at::kFloat)).sum(-1);
  if (grad_lse.defined()) delta = delta - at::where(lse.isfinite(), grad_lse, at::zeros_like(grad_lse));
  delta = delta.contiguous();
  const at::Tensor saved_lse = lse.contiguous();
  const int64_t batch = a.q.size(0), heads = a.q.size(1), m = a.k.size(2), d = a.q.size(3);
  const auto f32 = a.q.options().dtype(at::kFloat);
  const at::Tensor dq = at::zeros(a.q.sizes(), f32);
  // The tensor-core kernel writes every key row once; TopK adds into them.
  const auto make = [&] { return topk ? at::zeros({batch, heads, m, d}, f32) : at::empty({batch, heads, m, d}, f32); };
  const at::Tensor dk = make(), dv = make();
  p.dout = dout.data_ptr();
  p.do_batch_stride = dout.stride(0);
  p.do_head_stride = dout.stride(1);
  p.do_row_stride = dout.stride(2);
  p.lse = saved_lse.data_ptr<float>();
  p.delta = delta.data_ptr<float>();
  p.dq = dq.data_ptr<float>();
  p.dk = dk.data_ptr<float>();
  p.dv = dv.data_ptr<float>();
  p.deterministic = at::globalContext().deterministicAlgorithms();
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream(a.q.get_device()).stream();
  dispatch_kernel(a.q, [&](auto bf16, auto dim) {
    if (topk) {
      cuda::run_topk_bwd<decltype(bf16)::value, decltype(dim)::value>(p, stream);
    } else {
      cuda::run_attention_bwd<decltype(bf16)::value, decltype(dim)::value>(p, stream);
    }
  });
  // Grouped-query attention: a K/V head's gradient sums those of the query heads it serves.
  const int64_t kv_heads = a.k.size(1);
  auto per_kv_head = [&](const at::Tensor& g, const at::Tensor& like) {
    const at::Tensor summed = kv_heads == heads ? g : g.view({batch, kv_heads, heads / kv_heads, m, d}).sum(2);
    return summed.to(like.scalar_type());
  };
  return {dq.to(a.q.scalar_type()), per_kv_head(dk, a.k), per_kv_head(dv, a.v)};
}

// ---- Autograd ----

using Forward = AttendResult (*)(const AttendParams&);

// The pattern and scale of a recorded call, kept for the backward (an IValue capsule).
struct SavedPattern : torch::CustomClassHolder {
  SavedPattern(Pattern p, double s) : pattern(std::move(p)), scale(s) {}
  Pattern pattern;
  double scale;
};

// The additive bias of a Dense pattern, also inside a Permuted (a floating Dense.mask), or an
// undefined tensor.
at::Tensor bias_of(const Pattern& pattern) {
  const auto* dense = std::get_if<Dense>(&kernel_pattern(pattern));
  return dense && dense->mask.defined() && dense->mask.scalar_type() != at::kBool ? dense->mask : at::Tensor();
}

// `pattern` with its bias (bias_of) replaced by `bias`.
Pattern with_bias(const Pattern& pattern, const at::Tensor& bias) {
  if (const auto* permuted = std::get_if<Permuted>(&pattern)) {
    Permuted copy = *permuted;
    copy.inner = std::make_shared<const Pattern>(with_bias(*permuted->inner, bias));
    return copy;
  }
  Dense dense = std::get<Dense>(pattern);
  dense.mask = bias;
  return dense;
}

// The composite forward that the backward differentiates: the reference, behind the generic
// lowering for Permuted.
AttendResult differentiable_forward(const AttendParams& a) {
  if (std::holds_alternative<Permuted>(a.pattern)) return detail::lower_permuted(a, reference::run);
  return reference::run(a);
}

class FusedAttention : public torch::autograd::Function<FusedAttention> {
 public:
  // `bias` is bias_of(saved->pattern) when it has one, an input so that autograd tracks it.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const at::Tensor& q, const at::Tensor& k,
                                                const at::Tensor& v, const std::optional<at::Tensor>& bias,
                                                const c10::intrusive_ptr<SavedPattern>& saved,
                                                Forward kernel) {
    const AttendResult r = kernel({q, k, v, saved->pattern, saved->scale});
    torch::autograd::variable_list kept = {q, k, v, r.out, r.lse};
    if (bias) kept.push_back(*bias);
    ctx->save_for_backward(kept);
    ctx->saved_data["pattern"] = at::IValue::make_capsule(saved);
    return {r.out, r.lse};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto kept = ctx->get_saved_variables();  // q, k, v, out, lse[, bias]
    const auto saved = c10::static_intrusive_pointer_cast<SavedPattern>(
        ctx->saved_data["pattern"].toCapsule());
    const at::Tensor none;
    if (!grads[0].defined() && !grads[1].defined()) return {none, none, none, none, none, none};
    const bool biased = kept.size() == 6;
    const AttendParams call{kept[0], kept[1], kept[2], saved->pattern, saved->scale};
    if (!biased && has_fused_backward(call)) {
      const auto g = fused_backward(call, kept[3], kept[4], grads[0], grads[1]);
      return {g[0], g[1], g[2], none, none, none};
    }
    std::vector<at::Tensor> leaves;
    for (size_t i : {0, 1, 2, 5})
      if (i < kept.size()) leaves.push_back(kept[i].detach().requires_grad_(true));
    const Pattern pattern = biased ? with_bias(saved->pattern, leaves[3]) : saved->pattern;
    std::vector<at::Tensor> outputs, grad_outputs;
    {
      const at::AutoGradMode enable(true);
      const AttendResult r = differentiable_forward({leaves[0], leaves[1], leaves[2], pattern, saved->scale});
      if (grads[0].defined()) {
        outputs.push_back(r.out);
        grad_outputs.push_back(grads[0]);
      }
      if (grads[1].defined()) {
        outputs.push_back(r.lse);
        grad_outputs.push_back(grads[1]);
      }
    }
    const auto g = torch::autograd::grad(outputs, leaves, grad_outputs, /*retain_graph=*/false,
                                         /*create_graph=*/false, /*allow_unused=*/true);
    return {g[0], g[1], g[2], biased ? g[3] : none, none, none};
  }
};

AttendResult with_autograd(const AttendParams& a, Forward kernel) {
  const at::Tensor bias = bias_of(a.pattern);
  const bool record = at::GradMode::is_enabled() && (a.q.requires_grad() || a.k.requires_grad() ||
                                                     a.v.requires_grad() || (bias.defined() && bias.requires_grad()));
  if (!record) return kernel(a);
  const auto outs = FusedAttention::apply(a.q, a.k, a.v, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt,
                                          c10::make_intrusive<SavedPattern>(a.pattern, a.scale), kernel);
  return {outs[0], outs[1]};
}

}  // namespace

bool can_use_dense(const AttendParams& a, std::string* why_not) {
  const auto* p = std::get_if<Dense>(&a.pattern);
  if (!p) return refuse(why_not, std::string("not a Dense pattern (") + kind_name(a.pattern) + ")");
  return can_use_common(a, why_not);  // Dense.mask (bool or a bias of the query dtype) is read per score
}

AttendResult run_dense(const AttendParams& a) { return with_autograd(a, dense_fwd); }

bool can_use_block_sparse(const AttendParams& a, std::string* why_not) {
  const auto* p = std::get_if<BlockSparse>(&a.pattern);
  if (!p)
    return refuse(why_not, std::string("not a BlockSparse pattern (") + kind_name(a.pattern) + ")");
  if (!can_use_common(a, why_not)) return false;
  const int64_t d = a.q.size(3);
  if (p->block_q % cuda::kBlockM != 0 || p->block_k % cuda::kBlockN != 0)
    return refuse(why_not, "block_q = " + std::to_string(p->block_q) + ", block_k = " +
                               std::to_string(p->block_k) + "; the kernel needs block_q a multiple of " +
                               std::to_string(cuda::kBlockM) + " and block_k of " +
                               std::to_string(cuda::kBlockN));
  const int64_t k_blocks = (a.k.size(2) + p->block_k - 1) / p->block_k;
  return fits_smem(a, cuda::tile_smem_bytes(static_cast<int>(d)) +
                          int64_t{cuda::block_list_smem_bytes(static_cast<int>(k_blocks))},
                   std::to_string(k_blocks) + " key blocks", why_not);
}

AttendResult run_block_sparse(const AttendParams& a) { return with_autograd(a, block_sparse_fwd); }

bool can_use_topk(const AttendParams& a, std::string* why_not) {
  const auto* p = std::get_if<TopK>(&a.pattern);
  if (!p) return refuse(why_not, std::string("not a TopK pattern (") + kind_name(a.pattern) + ")");
  if (!can_use_common(a, why_not)) return false;
  const int64_t k = p->index.size(3);
  const int64_t smem = k <= 65536 ? cuda::topk_smem_bytes(static_cast<int>(k)) : -1;
  if (smem < 0 || smem > smem_optin(a.q.get_device()))
    return refuse(why_not, "lists of K = " + std::to_string(k) +
                               " keys do not fit the kernel's shared-memory duplicate filter");
  return true;
}

AttendResult run_topk(const AttendParams& a) { return with_autograd(a, topk_fwd); }

bool can_use_neighborhood(const AttendParams& a, std::string* why_not) {
  if (!std::holds_alternative<Neighborhood>(a.pattern))
    return refuse(why_not, std::string("not a Neighborhood pattern (") + kind_name(a.pattern) + ")");
  if (!can_use_common(a, why_not)) return false;  // attend() has checked the grid against N and M
  const int64_t tiles = (a.k.size(2) + cuda::kBlockN - 1) / cuda::kBlockN;
  return fits_smem(a, cuda::neighborhood_smem_bytes(static_cast<int>(a.q.size(3)), static_cast<int>(tiles)),
                   std::to_string(tiles) + " key tiles", why_not);
}

AttendResult run_neighborhood(const AttendParams& a) { return with_autograd(a, neighborhood_fwd); }

bool can_use_permuted(const AttendParams& a, std::string* why_not) {
  const auto* p = std::get_if<Permuted>(&a.pattern);
  if (!p) return refuse(why_not, std::string("not a Permuted pattern (") + kind_name(a.pattern) + ")");
  const AttendParams inner{a.q, a.k, a.v, *p->inner, a.scale};
  std::string why;
  bool ok = false;
  if (std::holds_alternative<Dense>(*p->inner)) {
    ok = can_use_dense(inner, &why);
  } else if (std::holds_alternative<BlockSparse>(*p->inner)) {
    ok = can_use_block_sparse(inner, &why);
  } else if (std::holds_alternative<TopK>(*p->inner)) {
    ok = can_use_topk(inner, &why);
  } else if (std::holds_alternative<Neighborhood>(*p->inner)) {
    ok = can_use_neighborhood(inner, &why);
  } else {
    why = "no kernel for its inner pattern";
  }
  return ok || refuse(why_not, std::string("inner ") + kind_name(*p->inner) + ": " + why);
}

AttendResult run_permuted(const AttendParams& a) { return with_autograd(a, permuted_fwd); }

}  // namespace sparsescope::cuda_backend
