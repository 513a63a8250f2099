#pragma once
// Colormaps for attention overlays (matplotlib's viridis, magma, inferno; turbo; gray).
#include <ATen/core/Tensor.h>

#include <string>

namespace sparsescope::vision {

enum class Colormap { Viridis, Magma, Inferno, Turbo, Gray };

/// "viridis" | "magma" | "inferno" | "turbo" | "gray"; throws naming the value and the choices.
Colormap parse_colormap(const std::string& name);
const char* to_string(Colormap colormap);

/// values [h, w] (any float dtype) mapped linearly from [lo, hi] (clamped) to uint8 RGB [h, w, 3].
at::Tensor apply_colormap(const at::Tensor& values, Colormap colormap, double lo, double hi);

/// (1 - alpha) * image + alpha * overlay, both uint8 [h, w, 3].
at::Tensor blend(const at::Tensor& image, const at::Tensor& overlay, double alpha);

}  // namespace sparsescope::vision
