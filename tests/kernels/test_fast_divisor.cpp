// The kernels' multiply-and-shift division (cuda::FastDivisor) against `/`, on the host (the same
// arithmetic as the device's __umulhi path): every divisor up to 4096 and powers of two and their
// neighbours up to 2^31, over small, random and extreme dividends below 2^31.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda/common/params.h"

namespace {

using sparsescope::cuda::fast_divisor;

void expect_exact(uint32_t d, const std::vector<int>& dividends) {
  const auto f = fast_divisor(d);
  for (const int n : dividends) ASSERT_EQ(f.div(n), n / static_cast<int64_t>(d)) << n << " / " << d;
}

TEST(FastDivisor, DividesLikeIntegerDivision) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> any(0, INT32_MAX);
  std::vector<int> dividends = {0, 1, 2, 3, 63, 64, 65, 4095, 4096, 65535, 65536, INT32_MAX - 1, INT32_MAX};
  for (int i = 0; i < 200; ++i) dividends.push_back(any(rng));
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 4096; ++d) divisors.push_back(d);
  for (int s = 12; s <= 31; ++s)
    for (const int64_t d : {(int64_t{1} << s) - 1, int64_t{1} << s, (int64_t{1} << s) + 1})
      if (d <= INT32_MAX) divisors.push_back(static_cast<uint32_t>(d));
  for (const uint32_t d : divisors) {
    std::vector<int> around = dividends;
    for (const int64_t k : {int64_t{1}, int64_t{2}, int64_t{1000}, int64_t{INT32_MAX} / d})
      for (const int64_t delta : {-1, 0, 1}) {
        const int64_t n = k * d + delta;
        if (n >= 0 && n <= INT32_MAX) around.push_back(static_cast<int>(n));
      }
    expect_exact(d, around);
  }
}

}  // namespace
