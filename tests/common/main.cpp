#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

int main(int argc, char** argv) {
  // MKL (inside LibTorch) picks its AVX-512 code paths on these machines, and there the first
  // float64 exp() after the first GEMM of a process was off by 3e-9 relative in about 2 % of
  // processes (a float64 gradient test failed its 1e-10 bound at random). Its AVX2 branch, pinned
  // through MKL's conditional-reproducibility switch, never was (0 of 400 processes); read at
  // MKL's first call, so set before any. An MKL_CBWR of the caller's wins.
  setenv("MKL_CBWR", "AVX2", /*overwrite=*/0);
  // LibTorch starts with one intra-op thread on these machines; use every core.
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
