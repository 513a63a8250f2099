#!/usr/bin/env bash
# Packs CIFAR-10 for `scripts/gpu/run.sh train-mae` into the ignored .data/cifar10.tar.gz (carry it
# with .deps): both splits as shipped (60,000 re-encoded JPEGs, 57 MB), 20 MB gzipped, since these
# small JPEGs share their tables and the call counts every file's own overhead. What travels must
# stay under 64 MiB: `scripts/gpu/set_aside.sh` before that call and `set_aside.sh --back` after it.
# Usage: scripts/gpu/prepare_mae_data.sh [SHARED_DATA_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${1:-$root/../shared/data}
mkdir -p "$root/.data"
tar -czf "$root/.data/cifar10.tar.gz.tmp" -C "$data" cifar10/train cifar10/test
mv "$root/.data/cifar10.tar.gz.tmp" "$root/.data/cifar10.tar.gz"
echo "$(tar -tzf "$root/.data/cifar10.tar.gz" | grep -c '\.jpg$') images in $root/.data/cifar10.tar.gz ($(du -h "$root/.data/cifar10.tar.gz" | cut -f1))"
