#include <gtest/gtest.h>

#include <string>

#include "sparsescope/kernels/error.h"
#include "sparsescope/kernels/version.h"

namespace {

void require_rank(int rank) {
  SPARSESCOPE_CHECK(rank == 4, "expected 4-D `query`, got ", rank, "-D tensor");
}

TEST(Error, CheckThrowsWithStreamedMessage) {
  EXPECT_NO_THROW(require_rank(4));
  try {
    require_rank(3);
    FAIL() << "SPARSESCOPE_CHECK did not throw";
  } catch (const sparsescope::Error& e) {
    EXPECT_EQ(std::string(e.what()), "expected 4-D `query`, got 3-D tensor");
  }
}

TEST(Error, IsARuntimeError) {
  EXPECT_THROW(SPARSESCOPE_FAIL("file 'x': bad"), std::runtime_error);
}

TEST(Version, ReportsLibraryAndTorch) {
  EXPECT_EQ(sparsescope::version(), "0.1.0");
  EXPECT_EQ(sparsescope::torch_version().rfind("2.", 0), 0u) << sparsescope::torch_version();
}

}  // namespace
