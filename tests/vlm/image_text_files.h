#pragma once
// Small image-text test data written into a test's folder: plain-coloured pictures and a BPE
// vocabulary of a few merges (so that CLIP's tasks run without ../shared/data).
#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>

#include "sparsescope/vision/image.h"
#include "sparsescope/vision/preprocess.h"

namespace sparsescope::test {

/// A 40 x 30 picture of one colour with a horizontal gradient.
inline void write_picture(const std::filesystem::path& path, int r, int g, int b) {
  std::filesystem::create_directories(path.parent_path());
  const at::Tensor ramp = at::linspace(0, 60, 40).view({1, 40, 1}).expand({30, 40, 1});
  const at::Tensor rgb = at::tensor({r, g, b}, at::kFloat).view({1, 1, 3});
  vision::write_png(path.string(), vision::tensor_to_image((rgb + ramp).clamp(0, 255).to(at::kByte).contiguous()));
}

/// Merges for "red" and "blue" (ids: 256 bytes, 256 with </w>, the merges, start, end).
inline std::filesystem::path write_small_vocab(const std::filesystem::path& dir) {
  const auto merges = dir / "merges.txt";
  std::ofstream(merges) << "#version: 0.2\nr e\nre d</w>\nb l\nbl u\nblu e</w>\n";
  return merges;
}

}  // namespace sparsescope::test
