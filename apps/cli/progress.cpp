#include "progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace sparsescope::cli {

ProgressBar::ProgressBar(std::string label, std::size_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  draw();
}

ProgressBar::~ProgressBar() {
  if (enabled_) {
    draw();
    std::cerr << "\n";
  }
}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::advance(std::size_t n) {
  done_ = std::min(total_, done_ + n);
  const auto now = std::chrono::steady_clock::now();
  // Redraw at most 20 times a second: terminals are slow and batches can be fast.
  if (done_ == total_ || now - last_draw_ > std::chrono::milliseconds(50)) {
    last_draw_ = now;
    draw();
  }
}

void ProgressBar::print_line(const std::string& line) {
  clear();
  std::cerr << line << "\n";
  draw();
}

void ProgressBar::clear() {
  if (enabled_) std::cerr << "\r\033[2K";
}

void ProgressBar::draw() {
  if (!enabled_) return;
  constexpr int kWidth = 30;
  const double fraction = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds = elapsed_seconds();
  const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0.0;
  char tail[96];
  if (rate > 0 && done_ < total_) {
    std::snprintf(tail, sizeof tail, " %zu/%zu  %.1f/s  ETA %.0fs", done_, total_, rate,
                  static_cast<double>(total_ - done_) / rate);
  } else {
    std::snprintf(tail, sizeof tail, " %zu/%zu  %.1fs", done_, total_, seconds);
  }
  std::cerr << "\r\033[2K" << label_ << " [" << std::string(filled, '#') << std::string(kWidth - filled, '.')
            << "]" << tail << std::flush;
}

}  // namespace sparsescope::cli
