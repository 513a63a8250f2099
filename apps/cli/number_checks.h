#pragma once
// CLI11's PositiveNumber and NonNegativeNumber name their range up to DBL_MAX, a 310-digit number,
// in every error; these say the same in a few words.
#include <CLI/CLI.hpp>
#include <cmath>
#include <string>

namespace sparsescope::cli {

inline CLI::Validator number_check(bool zero_allowed) {
  return CLI::Validator(
      [zero_allowed](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value) || !std::isfinite(value)) return "'" + text + "' is not a finite number";
        if (value < 0 || (value == 0 && !zero_allowed)) {
          return std::string("must be ") + (zero_allowed ? "zero or positive" : "positive") + ", got " + text;
        }
        return {};
      },
      zero_allowed ? "NONNEGATIVE" : "POSITIVE");
}

/// A number > 0.
inline const CLI::Validator kPositive = number_check(false);
/// A number >= 0.
inline const CLI::Validator kNonNegative = number_check(true);

}  // namespace sparsescope::cli
