#!/usr/bin/env bash
# The whole test suite: builds what it needs, then runs
#   1. every test of the main build (CPU; GPU tests skip without a GPU),
#   2. the LibTorch-free file readers under ASan+UBSan, built with clang, and
#   3. their libFuzzer targets for a bounded time (SPARSESCOPE_FUZZ_SECONDS, default 30 each).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

echo "== main build"
"$root/scripts/build.sh" -DSPARSESCOPE_BUILD_BENCH=ON  # the benchmarks compile with the tests
(cd "$root/build" && ctest --output-on-failure -j "$jobs")

echo "== sanitizers (ASan+UBSan) and fuzzers over the file readers"
CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSPARSESCOPE_IO_ONLY=ON -DSPARSESCOPE_SANITIZE=ON -DSPARSESCOPE_FUZZ=ON \
  -DSPARSESCOPE_FUZZ_SECONDS="${SPARSESCOPE_FUZZ_SECONDS:-30}" >/dev/null
cmake --build "$root/build-fuzz" -j "$jobs"
(cd "$root/build-fuzz" && ctest --output-on-failure -j "$jobs")
