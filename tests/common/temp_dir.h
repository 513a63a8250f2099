#pragma once
// A test fixture owning a fresh, empty directory per test (`dir_`), removed afterwards. The name
// holds the suite, the process id and the test, so parallel CTest runs never share one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace sparsescope::test {

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("sparsescope-" + std::string(info->test_suite_name()) + "-" + std::to_string(::getpid()) + "-" +
            info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

}  // namespace sparsescope::test
