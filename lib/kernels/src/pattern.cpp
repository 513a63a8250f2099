#include "sparsescope/kernels/pattern.h"

#include <iterator>
#include <type_traits>
#include <utility>

namespace sparsescope {

Permuted permuted(at::Tensor perm, at::Tensor inverse, Pattern inner, at::Tensor kv_perm) {
  return Permuted{std::move(perm), std::move(inverse), std::move(kv_perm),
                  std::make_shared<const Pattern>(std::move(inner))};
}

std::optional<double> scale_of(const Pattern& pattern) {
  return std::visit(
      [](const auto& p) -> std::optional<double> {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, Permuted>)
          return p.inner ? scale_of(*p.inner) : std::nullopt;
        else
          return p.scale;
      },
      pattern);
}

const char* kind_name(const Pattern& pattern) {
  static constexpr const char* kNames[] = {"dense", "block_sparse", "topk", "neighborhood",
                                           "permuted"};
  static_assert(std::variant_size_v<Pattern> == std::size(kNames));
  return kNames[pattern.index()];
}

}  // namespace sparsescope
