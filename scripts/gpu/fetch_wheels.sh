#!/usr/bin/env bash
# Downloads, here, the Python packages that the GPU machine's benchmarks need and it lacks, into the
# git-ignored .whl/ that scripts/gpu/run.sh installs from (carry it): einops (the official DLGSANet
# imports it), and cupy-cuda13x with fastrlock (the official CuPy kernel of bench/dlgsanet.py).
# CuPy's wheel (69 MB) alone would exceed what a call carries (64 MiB), so it travels unpacked with
# its shared objects stripped of debug information, as .whl/cupy-cuda13x.tar.xz (32 MB).
# Usage: scripts/gpu/fetch_wheels.sh [PYTHON_VERSION]   (the GPU machine's Python, default 3.12)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=${1:-3.12}
whl=$root/.whl
mkdir -p "$whl"
get() { pip download -q --no-deps --only-binary=:all: --python-version "$version" \
          --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d "$1" "${@:2}"; }
get "$whl" einops fastrlock
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
get "$work" cupy-cuda13x
(cd "$work" && unzip -q ./cupy_cuda13x-*.whl -d site && rm ./cupy_cuda13x-*.whl)
find "$work/site" -name '*.so' -exec strip --strip-unneeded {} +
tar -C "$work/site" -cf - . | xz -9 -T0 >"$whl/cupy-cuda13x.tar.xz.tmp"
mv "$whl/cupy-cuda13x.tar.xz.tmp" "$whl/cupy-cuda13x.tar.xz"
ls -l "$whl"
