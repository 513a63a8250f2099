#!/usr/bin/env bash
# Downloads, here, the Debian packages that the library build (SPARSESCOPE_BUILD_APPS=OFF) needs and
# the GPU machine lacks, into the git-ignored .deps/ of the repository: nlohmann-json (the ViT
# tests' fixtures), stb (image decoding) with pkgconf to find it, GoogleTest as a fallback, and
# CLI11's headers (.deps/cli11/CLI, for the trainer sparsescope-train).
# scripts/gpu/run.sh unpacks them into a private prefix there (never into /).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$root/.deps"
cd "$root/.deps"
rm -f ./*.deb
apt-get download nlohmann-json3-dev libstb-dev libstb0 pkgconf-bin libpkgconf3 libgtest-dev libgmock-dev
rm -rf cli11 cli11.tmp
apt-get download libcli11-dev
dpkg -x libcli11-dev_*.deb cli11.tmp && mkdir cli11 && mv cli11.tmp/usr/include/CLI cli11/ && rm -rf cli11.tmp libcli11-dev_*.deb
ls -l ./*.deb cli11/CLI/CLI.hpp
