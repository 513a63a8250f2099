#pragma once
// The image fixtures of scripts/fixtures/make_image_fixtures.py and their case lists.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace sparsescope::test {

inline const std::filesystem::path kImages = std::filesystem::path(SPARSESCOPE_FIXTURES_DIR) / "images";

/// The whitespace-separated fields of each line of a cases.txt, without blank and '#' lines.
inline std::vector<std::vector<std::string>> read_cases(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.is_open()) << path;
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    rows.emplace_back(std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>());
  }
  return rows;
}

}  // namespace sparsescope::test
