#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <thread>

int main(int argc, char** argv) {
  // LibTorch starts with one intra-op thread on these machines; use every core.
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
