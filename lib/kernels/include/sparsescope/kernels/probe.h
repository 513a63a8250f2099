#pragma once
// What attend() tells an observer before it computes (DESIGN.md section 4). The recorder that turns
// this into probabilities, masks and recall lives in lib/vision; the kernels only call out.
#include <ATen/core/Tensor.h>

#include "sparsescope/kernels/pattern.h"

namespace sparsescope {

class Probe {
 public:
  virtual ~Probe() = default;

  /// Called once per attend() call, after the inputs were checked and before anything is computed,
  /// with the caller's tensors, the caller's pattern (a Permuted one included, not its inner) and
  /// the scale actually used.
  virtual void observe(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const Pattern& pattern, double scale) = 0;
};

}  // namespace sparsescope
