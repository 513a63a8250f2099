// Sparsifiner's attention (predictor + dense class-token row + TopK over the kept keys) against
// torch SDPA and our dense kernel on one block of ViT-S (6 heads of 64), and whole ViT-S forward
// passes dense vs Sparsifiner, at 224, 384 and 512 px (N = 197, 577, 1025 tokens; random weights:
// speed does not depend on them). Prints one JSON line per measurement and a Markdown table.
//   sparsescope-bench-sparsifiner [BATCH=64] [fp16|bf16|fp32=bf16] [KEEP=0.25] [cuda|cpu=cuda]
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/basis_topk.h"
#include "sparsescope/vision/attention_method.h"
#include "sparsescope/vision/sparsifiner.h"
#include "sparsescope/vision/vit.h"
#include "timing.h"

namespace sv = sparsescope::vision;
using sparsescope::bench::median_ms;

int main(int argc, char** argv) try {
  const int64_t batch = argc > 1 ? std::stoll(argv[1]) : 64;
  const std::string dtype_name = argc > 2 ? argv[2] : "bf16";
  const double keep = argc > 3 ? std::stod(argv[3]) : 0.25;
  const at::Device device(argc > 4 ? argv[4] : "cuda");
  const at::ScalarType dtype = sparsescope::bench::parse_dtype(dtype_name);
  const int iters = device.is_cuda() ? 20 : 2;
  torch::manual_seed(0);
  c10::InferenceMode guard;

  std::printf("| px | N | kept keys | SDPA ms | dense ms | Sparsifiner ms | of which predictor ms | TopK attention ms | "
              "selection ms (fused) | selection ms (materialised) | Sparsifiner / SDPA | ViT-S img/s dense | "
              "ViT-S img/s Sparsifiner | ratio |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const int64_t px : {224, 384, 512}) {
    sv::ViTConfig config = sv::vit_config("vit_small_patch16_224");
    config.img_size = px;
    config.eval.img_size = static_cast<int>(px);
    sv::SparsifinerOptions method;
    method.keep_rate = keep;
    config = sv::with_sparsifiner(config, method);
    const int64_t N = config.tokens(), H = config.num_heads, D = config.embed_dim / H;
    const auto options = torch::dtype(dtype).device(device);

    // One block's attention.
    const auto q = torch::randn({batch, H, N, D}, options), k = torch::randn({batch, H, N, D}, options),
               v = torch::randn({batch, H, N, D}, options);
    const auto predictor =
        sv::attention_policy(sv::kSparsifinerPolicy).make({D, H, N, config.prefix_tokens()}, config.attention.options);
    predictor->to(device, dtype);
    const auto keys = sv::sparsifiner_kept_keys(*predictor, q, k);
    const auto q_rows = q.narrow(2, 1, N - 1);
    const double sdpa = median_ms([&] { at::scaled_dot_product_attention(q, k, v); }, device, iters);
    const double dense = median_ms([&] { sparsescope::attend(q, k, v, sparsescope::Dense{}); }, device, iters);
    const double sparse = median_ms([&] { predictor->attend(q, k, v, nullptr); }, device, iters);
    const double predict = median_ms([&] { sv::sparsifiner_kept_keys(*predictor, q, k); }, device, iters);
    const double topk =
        median_ms([&] { sparsescope::attend(q_rows, k, v, sparsescope::TopK{keys, std::nullopt}); }, device, iters);
    // The predictor's selection alone, on inputs of its shapes: the fused kernel against the
    // materialised estimate and topk (what the predictor ran before basis_topk).
    const int64_t slots = method.slots(N), terms = std::min(method.basis_topk, slots);
    const auto values = torch::softmax(torch::randn({batch, H, N - 1, terms}, options), -1);
    const auto slot_index = torch::randint(slots, {batch, H, N - 1, terms}, torch::dtype(torch::kLong).device(device));
    const auto basis = torch::rand({slots, N}, options);
    const auto kept = keys.size(-1);
    const double select = median_ms([&] { sparsescope::basis_topk(values, slot_index, basis, kept); }, device, iters);
    const double select_ref =
        median_ms([&] { sparsescope::basis_topk_reference(values, slot_index, basis, kept); }, device, iters);

    // Whole forward passes.
    sv::VisionTransformer model(config);
    model->eval();
    model->to(device, dtype);
    const auto images = torch::randn({batch, config.in_chans, px, px}, options);
    sv::use_attention_method(model, sv::kDensePolicy);
    const double model_dense = median_ms([&] { model->forward(images); }, device, std::max(1, iters / 4));
    sv::use_attention_method(model, sv::kSparsifinerPolicy);
    const double model_sparse = median_ms([&] { model->forward(images); }, device, std::max(1, iters / 4));
    const double ips_dense = 1e3 * static_cast<double>(batch) / model_dense;
    const double ips_sparse = 1e3 * static_cast<double>(batch) / model_sparse;

    std::fprintf(stderr,
                 "{\"px\": %lld, \"tokens\": %lld, \"kept\": %lld, \"batch\": %lld, \"dtype\": \"%s\", \"sdpa_ms\": %.4f, "
                 "\"dense_ms\": %.4f, \"sparsifiner_ms\": %.4f, \"predictor_ms\": %.4f, \"topk_ms\": %.4f, "
                 "\"select_ms\": %.4f, \"select_reference_ms\": %.4f, \"vit_dense_ips\": %.1f, \"vit_sparsifiner_ips\": %.1f}\n",
                 static_cast<long long>(px), static_cast<long long>(N), static_cast<long long>(kept),
                 static_cast<long long>(batch), dtype_name.c_str(), sdpa, dense, sparse, predict, topk, select, select_ref,
                 ips_dense, ips_sparse);
    std::printf("| %lld | %lld | %lld | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.1fx | %.0f | %.0f | %.2fx |\n",
                static_cast<long long>(px), static_cast<long long>(N), static_cast<long long>(kept), sdpa, dense,
                sparse, predict, topk, select, select_ref, sparse / sdpa, ips_dense, ips_sparse, ips_sparse / ips_dense);
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "sparsescope-bench-sparsifiner: " << e.what() << "\n";
  return 1;
}
