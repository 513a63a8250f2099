#!/usr/bin/env bash
# Downloads, here, the Debian packages that the library build (SPARSESCOPE_BUILD_APPS=OFF) needs and
# the GPU machine lacks, into the git-ignored .deps/ of the repository: nlohmann-json (the ViT
# tests' fixtures), stb (image decoding) with pkgconf to find it, and GoogleTest as a fallback.
# scripts/gpu/run.sh unpacks them into a private prefix there (never into /).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$root/.deps"
cd "$root/.deps"
rm -f ./*.deb
apt-get download nlohmann-json3-dev libstb-dev libstb0 pkgconf-bin libpkgconf3 libgtest-dev libgmock-dev
ls -l ./*.deb
