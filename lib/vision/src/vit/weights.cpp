#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "sparsescope/vision/module_weights.h"
#include "sparsescope/vision/state_dict.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

namespace {

// timm's resample_abs_pos_embed: the prefix tokens stay, the square grid is resized with
// antialiased bicubic interpolation in float32 (align_corners=False).
int64_t grid_side(int64_t tokens) {
  return static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(std::max<int64_t>(tokens, 0)))));
}

bool is_square_grid(int64_t tokens) { return tokens > 0 && grid_side(tokens) * grid_side(tokens) == tokens; }

at::Tensor resample_pos_embed(const at::Tensor& pos_embed, int64_t new_grid, int64_t prefix) {
  const int64_t old_tokens = pos_embed.size(1) - prefix;
  const int64_t old_grid = grid_side(old_tokens);
  const int64_t dim = pos_embed.size(2);
  const auto grid = pos_embed.narrow(1, prefix, old_tokens)
                        .to(at::kFloat)
                        .reshape({1, old_grid, old_grid, dim})
                        .permute({0, 3, 1, 2});  // [1, D, G, G]
  const auto resized = at::_upsample_bicubic2d_aa(grid, {new_grid, new_grid}, /*align_corners=*/false)
                           .permute({0, 2, 3, 1})
                           .reshape({1, new_grid * new_grid, dim})
                           .to(pos_embed.scalar_type());  // [1, G'*G', D]
  return at::cat({pos_embed.narrow(1, 0, prefix), resized}, 1);
}

}  // namespace

void load_vit_weights(VisionTransformer& model, const std::string& path) {
  NamedTensors weights = load_state_dict(path);
  const auto& config = model->config();
  for (auto& [name, tensor] : weights) {
    if (name == "pos_embed" && tensor.dim() == 3 && tensor.size(1) != config.tokens() &&
        is_square_grid(tensor.size(1) - config.prefix_tokens())) {
      tensor = resample_pos_embed(tensor, config.grid(), config.prefix_tokens());
    }
  }  // a pos_embed that is no square grid after the prefix is reported as mis-shaped below
  assign_weights(*model, weights, path);
}

}  // namespace sparsescope::vision
