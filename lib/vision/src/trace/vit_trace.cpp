#include "sparsescope/vision/vit_trace.h"

#include <ATen/ATen.h>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

TokenLayout vit_token_layout(const ViTConfig& config) {
  TokenLayout layout;
  layout.prefix = config.prefix_tokens();
  layout.grid = {1, config.grid(), config.grid()};
  layout.segments = {{"prefix", 0, layout.prefix}, {"image", layout.prefix, layout.tokens()}};
  return layout;
}

TraceInfo vit_trace_info(const ViTConfig& config, const std::string& method, const std::string& input,
                         int64_t frame) {
  TraceInfo info;
  info.model = config.name;
  info.method = method;
  info.input = input;
  info.frame = frame;
  info.layout = vit_token_layout(config);
  info.producer = trace_producer();
  return info;
}

at::Tensor denormalize_input(const at::Tensor& input, const EvalTransform& transform) {
  SPARSESCOPE_CHECK(input.defined() && input.dim() == 3 && (input.size(0) == 3 || input.size(0) == 1) &&
                        at::isFloatingType(input.scalar_type()),
                    "denormalize_input: expected a float `input` [3, H, W] or [1, H, W], got ",
                    input.defined() ? input.sizes() : at::IntArrayRef{});
  const int64_t channels = input.size(0);
  // A gray input uses the first channel's statistics and is shown as RGB.
  const auto column = [channels](const std::array<float, 3>& v) {
    return at::tensor(at::ArrayRef<float>(v.data(), static_cast<size_t>(channels))).view({channels, 1, 1});
  };
  const at::Tensor pixels =
      (input.detach().cpu().to(at::kFloat) * column(transform.std) + column(transform.mean)) * 255;
  return pixels.round().clamp(0, 255).to(at::kByte).expand({3, -1, -1}).permute({1, 2, 0}).contiguous();
}

}  // namespace sparsescope::vision
