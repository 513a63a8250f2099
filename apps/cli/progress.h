#pragma once
#include <chrono>
#include <cstddef>
#include <string>

namespace sparsescope::cli {

/// One-line progress bar on stderr, drawn only when stderr is a terminal (quiet in logs and CI).
class ProgressBar {
 public:
  ProgressBar(std::string label, std::size_t total);
  ~ProgressBar();
  void advance(std::size_t n = 1);
  /// Prints a line above the bar (e.g. a failed item) without tearing it.
  void print_line(const std::string& line);
  double elapsed_seconds() const;

 private:
  void draw();
  void clear();

  std::string label_;
  std::size_t total_;
  std::size_t done_ = 0;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace sparsescope::cli
