#!/usr/bin/env bash
# Data and the official code for `scripts/gpu/run.sh bench-mae bench-dlgsanet` (bench/mae.sh,
# bench/dlgsanet.py, bench/dlgsanet_model.sh), into the ignored .data/ (carried to the GPU machine:
# carry [".deps", ".data/cifar_small/train", ".data/official", ".whl"], .whl holding einops's wheel):
#   .data/cifar_small/train  the first 500 images of each CIFAR-10 training class (4.6 MB)
#   .data/official/{mae,lut,dlgsanet}  the Python files of checkouts of facebookresearch/mae,
#                            naver-ai/lut and NeonLeexiang/DLGSANet (0.3 MB; never committed)
# Usage: scripts/gpu/prepare_bench_data.sh MAE_CHECKOUT LUT_CHECKOUT DLGSANET_CHECKOUT [SHARED_DATA_DIR]
#   for r in facebookresearch/mae naver-ai/lut NeonLeexiang/DLGSANet; do git clone https://github.com/$r /tmp/${r#*/}; done
set -euo pipefail
if [ $# -lt 3 ]; then sed -n '2,9p' "$0"; exit 2; fi
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${4:-$root/../shared/data}
declare -A checkouts=([mae]=$1 [lut]=$2 [dlgsanet]=$3)
for name in mae lut dlgsanet; do
  src=${checkouts[$name]}
  dst=$root/.data/official/$name
  rm -rf "$dst"
  mkdir -p "$dst"
  files='*.py'
  [ $name = dlgsanet ] && files='dlgsanet_*.py'  # its architecture and CuPy kernel, not all of BasicSR
  (cd "$src" && find . -name "$files" -print0 | xargs -0 cp --parents -t "$dst")
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
