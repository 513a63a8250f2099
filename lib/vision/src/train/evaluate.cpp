#include "sparsescope/vision/evaluate.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "autocast.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/graphed_forward.h"
#include "sparsescope/vision/vit_input.h"

namespace sparsescope::vision {

const char* to_string(Precision precision) {
  switch (precision) {
    case Precision::FP32: return "fp32";
    case Precision::BF16: return "bf16";
    case Precision::FP16: return "fp16";
  }
  return "?";
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::FP32;
  if (name == "bf16") return Precision::BF16;
  if (name == "fp16") return Precision::FP16;
  SPARSESCOPE_FAIL("unknown precision '", name, "' (fp32, bf16, fp16)");
}

int64_t inference_bytes_per_image(const ViTConfig& c, int64_t element_bytes) {
  const int64_t n = c.tokens(), d = c.embed_dim;
  const int64_t attention = 2 * c.num_heads * n * n;
  const auto hidden = static_cast<int64_t>(static_cast<double>(n * d) * c.mlp_ratio);
  const int64_t stream = 6 * n * d;  // residual, norm, q, k, v, attention output
  const int64_t image = c.in_chans * c.img_size * c.img_size;
  // Twice the live tensors: CPU kernels' temporaries (measured: 470 kB per image for the bundled
  // Fashion-MNIST ViT in fp32, estimated 770 kB).
  return 2 * (element_bytes * (std::max(attention, hidden) + stream) + 4 * image);
}

EvalResult evaluate(VisionTransformer& model, const ImageDataset& data, const EvalOptions& options) {
  const ViTConfig& c = model->config();
  SPARSESCOPE_CHECK(data.size() > 0, "evaluate: dataset '", data.source, "' is empty");
  SPARSESCOPE_CHECK(options.batch > 0, "evaluate: batch must be positive, got ", options.batch);
  SPARSESCOPE_CHECK(c.num_classes > 0, "evaluate: ", c.name, " has no classification head");
  SPARSESCOPE_CHECK(data.images.size(1) == c.in_chans && data.images.size(2) == c.img_size &&
                        data.images.size(3) == c.img_size,
                    "evaluate: dataset '", data.source, "' holds images ", data.images.sizes().slice(1), ", ", c.name,
                    " takes [", c.in_chans, ", ", c.img_size, ", ", c.img_size, "]");
  const int64_t max_label = data.labels.max().item<int64_t>();
  SPARSESCOPE_CHECK(max_label < c.num_classes, "evaluate: dataset '", data.source, "' has label ", max_label, ", ",
                    c.name, " has ", c.num_classes, " classes");

  const at::Tensor weight = model->parameters().front();
  const at::Device device = weight.device();
  const at::ScalarType dtype = weight.scalar_type();
  SPARSESCOPE_CHECK(!options.cuda_graph || device.is_cuda(), "evaluate: CUDA graphs need the model on a CUDA device, not ",
                    device);
  const int64_t k = std::min<int64_t>(5, c.num_classes);
  const bool was_training = model->is_training();
  model->eval();
  c10::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  at::Tensor correct1 = at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device));
  at::Tensor correct5 = correct1.clone();
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
  std::unique_ptr<GraphedForward> graphed;  // the full batches' forward, captured at the first
  for (int64_t begin = 0; begin < data.size(); begin += options.batch) {
    const int64_t n = std::min(options.batch, data.size() - begin);
    const at::Tensor x = normalize_pixels(data.images.narrow(0, begin, n).to(device), c.eval).to(dtype);
    const at::Tensor y = data.labels.narrow(0, begin, n).to(device);
    at::Tensor logits;
    if (options.cuda_graph && n == options.batch && !graphed) {
      graphed = std::make_unique<GraphedForward>(
          [&](const at::Tensor& input) {
            detail::AutocastGuard autocast(device.type(), options.precision, /*cache=*/false);
            return model->forward(input);
          },
          x);
    }
    if (graphed && graphed->matches(x)) {
      logits = (*graphed)(x);  // read below before the next replay overwrites it, in stream order
    } else {
      detail::AutocastGuard autocast(device.type(), options.precision);
      logits = model->forward(x);
    }
    logits = logits.to(at::kFloat);  // [n, classes]
    loss_sum += at::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).to(at::kDouble);
    const at::Tensor top = std::get<1>(logits.topk(k, 1));  // [n, k]
    const at::Tensor hit = top.eq(y.unsqueeze(1));
    correct1 += hit.select(1, 0).sum();
    correct5 += hit.any(1).sum();
    if (options.on_batch) options.on_batch(n);
  }
  EvalResult result;
  result.images = data.size();
  const auto total = static_cast<double>(result.images);
  result.top1 = static_cast<double>(correct1.item<int64_t>()) / total;  // the first .item() waits for the device
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.top5 = static_cast<double>(correct5.item<int64_t>()) / total;
  result.loss = loss_sum.item<double>() / total;
  model->train(was_training);
  return result;
}

}  // namespace sparsescope::vision
