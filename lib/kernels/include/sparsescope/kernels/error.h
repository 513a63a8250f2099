#pragma once
// The one exception type of sparsescope and the check macro for caller errors.
// Header-only and free of LibTorch so that the file-format core (fuzzed, sanitized) can use it.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace sparsescope {

/// Thrown for every caller error: the message names the file, key, flag, shape or dtype at fault.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Parts>
[[noreturn]] void throw_error(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  throw Error(out.str());
}
}  // namespace detail

}  // namespace sparsescope

/// SPARSESCOPE_CHECK(cond, "expected 4-D `query`, got ", q.dim(), "-D tensor");
/// throws sparsescope::Error with the streamed parts when `cond` is false.
#define SPARSESCOPE_CHECK(cond, ...)                         \
  do {                                                       \
    if (!(cond)) ::sparsescope::detail::throw_error(__VA_ARGS__); \
  } while (0)

/// Unconditional failure with the same message discipline.
#define SPARSESCOPE_FAIL(...) ::sparsescope::detail::throw_error(__VA_ARGS__)
