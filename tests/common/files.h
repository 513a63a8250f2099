#pragma once
// File and error helpers shared by the LibTorch-level tests.
#include <ftw.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "sparsescope/kernels/error.h"

namespace sparsescope::test {

/// Removes a directory tree with POSIX calls, independent of which std::filesystem the dynamic
/// linker binds (see SPARSESCOPE_STDCXX_FIRST in cmake/SparsescopeTorch.cmake).
inline void remove_tree(const std::filesystem::path& dir) {
  ::nftw(
      dir.c_str(), [](const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.is_open()) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

/// The message of the sparsescope::Error that `f` throws.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const sparsescope::Error& e) {
    return e.what();
  }
  return "<no sparsescope::Error thrown>";
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace sparsescope::test
