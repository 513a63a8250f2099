#!/usr/bin/env bash
# Data and code for `scripts/gpu/run.sh bench-mae` (bench/mae.sh), into the ignored .data/ (carried
# to the GPU machine: carry [".deps", ".data/cifar_small/train", ".data/official"]):
#   .data/cifar_small/train  the first 500 images of each CIFAR-10 training class (4.6 MB)
#   .data/official/{mae,lut} the Python files of checkouts of facebookresearch/mae and naver-ai/lut
# Usage: scripts/gpu/prepare_mae_bench.sh MAE_CHECKOUT LUT_CHECKOUT [SHARED_DATA_DIR]
#   git clone https://github.com/facebookresearch/mae /tmp/mae; git clone https://github.com/naver-ai/lut /tmp/lut
set -euo pipefail
if [ $# -lt 2 ]; then sed -n '2,9p' "$0"; exit 2; fi
root=$(cd "$(dirname "$0")/../.." && pwd)
mae=$1 lut=$2 data=${3:-$root/../shared/data}
for name in mae lut; do
  src=$([ $name = mae ] && echo "$mae" || echo "$lut")
  dst=$root/.data/official/$name
  rm -rf "$dst"
  mkdir -p "$dst"
  (cd "$src" && find . -name '*.py' -print0 | xargs -0 cp --parents -t "$dst")
done
train=$root/.data/cifar_small/train
if [ ! -d "$train" ]; then
  for class in "$data/cifar10/train"/*/; do
    class=$(basename "$class")
    mkdir -p "$train/$class"
    find "$data/cifar10/train/$class" -maxdepth 1 -type f | LC_ALL=C sort | head -500 | xargs cp -t "$train/$class"
  done
fi
echo "$(find "$train" -type f | wc -l) training images; official code: $(du -sh "$root/.data/official" | cut -f1)"
