#!/usr/bin/env bash
# Copies the SR training and validation data for `scripts/gpu/run.sh train-sr` into the ignored
# .data/sr/ (carried to the GPU machine: carry [".deps", ".data/sr"]): every 5th photo of
# ../shared/data/imagenet-sample in name (wnid) order, 200 photos, of which the 188 at least 192
# pixels on each side (the HR patch; smaller ones the trainer would skip and report), 23 MB (the
# 1000 photos would not fit the 64 MiB that travels with the tree), and Set5 at x4 as shipped.
# Usage: scripts/gpu/prepare_sr_data.sh [SHARED_DATA_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${1:-$root/../shared/data}
out=$root/.data/sr
rm -rf "$out"
mkdir -p "$out/train" "$out/Set5"
find "$data/imagenet-sample" -maxdepth 1 -type f -name '*.JPEG' | LC_ALL=C sort |
  awk 'NR % 5 == 1' | "$root/.venv/bin/python" -c '
import sys
from PIL import Image
for line in sys.stdin:
    path = line.rstrip("\n")
    with Image.open(path) as im:
        if min(im.size) >= 192:
            print(path)' | while IFS= read -r photo; do cp "$photo" "$out/train/"; done
cp -r "$data/sr/Set5/image_SRF_4" "$out/Set5/"
echo "$(find "$out/train" -type f | wc -l) training photos, $(du -sh "$out" | cut -f1) in $out"
