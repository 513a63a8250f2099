#!/usr/bin/env bash
# Configures and builds sparsescope into build/ (Release, Ninja, LibTorch from .venv).
# Extra arguments go to CMake's configure step, e.g. -DSPARSESCOPE_CUDA=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${SPARSESCOPE_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
