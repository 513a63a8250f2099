#!/usr/bin/env bash
# The official code for `scripts/gpu/run.sh bench-mae bench-dlgsanet` (bench/mae.sh,
# bench/dlgsanet.py, bench/dlgsanet_model.sh): the Python files of checkouts of facebookresearch/mae,
# naver-ai/lut and NeonLeexiang/DLGSANet (its architecture and CuPy kernel), 0.3 MB, into the ignored
# .data/official/{mae,lut,dlgsanet} (never committed). Carry [".deps", ".data/official", ".whl"] to
# the GPU machine, .whl holding einops's wheel, which the official DLGSANet imports.
# Usage: scripts/gpu/prepare_official.sh MAE_CHECKOUT LUT_CHECKOUT DLGSANET_CHECKOUT
#   for r in facebookresearch/mae naver-ai/lut NeonLeexiang/DLGSANet; do git clone https://github.com/$r /tmp/${r#*/}; done
set -euo pipefail
if [ $# -lt 3 ]; then sed -n '2,8p' "$0"; exit 2; fi
root=$(cd "$(dirname "$0")/../.." && pwd)
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
echo "official code: $(du -sh "$root/.data/official" | cut -f1) in $root/.data/official"
