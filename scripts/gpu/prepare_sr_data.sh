#!/usr/bin/env bash
# Copies the SR training and validation data for `scripts/gpu/run.sh train-sr` into the ignored
# .data/sr/ (carried to the GPU machine: carry [".deps", ".data/sr"]): every 5th photo of
# ../shared/data/imagenet-sample in name (wnid) order, 200 photos, of which the 188 at least 192
# pixels on each side (the HR patch; smaller ones the trainer would skip and report), 23 MB (the
# 1000 photos would not fit the 64 MiB that travels with the tree), and Set5 at x4 as shipped.
# With SR_TRAIN_MB=N, the other photos follow in name order (each 5th photo's four neighbours after
# it, again only those of at least 192 pixels a side) while the training photos stay under N MB: 44
# leaves room for the tree (after scripts/gpu/set_aside.sh) and .deps within what a call carries.
# Usage: [SR_TRAIN_MB=N] scripts/gpu/prepare_sr_data.sh [SHARED_DATA_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${1:-$root/../shared/data}
budget=$(( ${SR_TRAIN_MB:-0} * 1000000 ))
out=$root/.data/sr
rm -rf "$out"
mkdir -p "$out/train" "$out/Set5"
# Every 5th photo first, then the rest by their offset from it (1, 2, 3, 4), in name order.
find "$data/imagenet-sample" -maxdepth 1 -type f -name '*.JPEG' | LC_ALL=C sort |
  awk '{ print (NR - 1) % 5, NR, $0 }' | sort -k1,1n -k2,2n | cut -d' ' -f1,3- |
  "$root/.venv/bin/python" -c '
import os, sys
from PIL import Image
budget, total = int(sys.argv[1]), 0
for line in sys.stdin:
    offset, path = line.rstrip("\n").split(" ", 1)
    size = os.path.getsize(path)
    if offset != "0" and total + size > budget:
        break
    with Image.open(path) as im:
        if min(im.size) >= 192:
            total += size
            print(path)' "$budget" | while IFS= read -r photo; do cp "$photo" "$out/train/"; done
cp -r "$data/sr/Set5/image_SRF_4" "$out/Set5/"
echo "$(find "$out/train" -type f | wc -l) training photos, $(du -sh "$out" | cut -f1) in $out"
