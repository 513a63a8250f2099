#!/usr/bin/env bash
# Trains the bundled Fashion-MNIST classifier on a CUDA machine and evaluates the weights it saved.
# Usage: scripts/gpu/train_default.sh BUILD_DIR PYTHON OUT_DIR FMNIST_DIR
#   BUILD_DIR   build folder: configured here when it has no CMakeCache.txt (library-only build,
#               -DSPARSESCOPE_BUILD_APPS=OFF); only the sparsescope-train target is built
#   PYTHON      the Python whose torch provides LibTorch (python3 on the GPU machine)
#   OUT_DIR     receives vit_fmnist.safetensors, log.json, eval.json, command.txt, train.log, gpu.txt
#   FMNIST_DIR  the four Fashion-MNIST IDX files, .gz or not (Debian: /usr/share/datasets/fashion-mnist)
# Environment: CLI11_INCLUDE_DIR (the folder holding CLI/CLI.hpp where libcli11-dev is missing),
#   CMAKE_ARGS (more configure arguments), TIME_BUDGET (seconds of training, default 300).
set -euo pipefail
if [ $# -ne 4 ]; then sed -n '2,11p' "$0"; exit 2; fi
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$1 python=$2 out=$3 data=$4
mkdir -p "$out"

configure=(-DSPARSESCOPE_BUILD_TRAINER=ON)
[ -n "${CLI11_INCLUDE_DIR:-}" ] && configure+=(-DSPARSESCOPE_CLI11_INCLUDE_DIR="$CLI11_INCLUDE_DIR")
if [ ! -f "$build/CMakeCache.txt" ]; then
  configure+=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DSPARSESCOPE_BUILD_APPS=OFF -DSPARSESCOPE_BUILD_TESTS=OFF
              -DSPARSESCOPE_PYTHON="$python")
fi
# shellcheck disable=SC2086  # CMAKE_ARGS is a list of arguments
cmake -S "$root" -B "$build" "${configure[@]}" ${CMAKE_ARGS:-} >"$out/configure.log" 2>&1 ||
  { tail -n 30 "$out/configure.log"; exit 1; }
cmake --build "$build" --target sparsescope-train -j "$(nproc)" ||
  { echo "train_default: no sparsescope-train target? CLI11 headers are needed (CLI11_INCLUDE_DIR)"; exit 1; }
trainer="$build/bin/sparsescope-train"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/gpu.txt" 2>&1 || true

run="$build/train-default"  # checkpoints (about 50 MB) stay out of OUT_DIR
recipe=(--dataset "fashion-mnist:$data" --name vit_fmnist_patch4_28 --patch-size 4 --embed-dim 192 --depth 9
        --num-heads 3 --mlp-ratio 4 --epochs 150 --batch 512 --lr 1e-3 --min-lr 1e-5 --warmup-epochs 5
        --weight-decay 0.05 --label-smoothing 0.1 --clip-grad 1 --pad 4 --random-erasing 0.25 --seed 0
        --device cuda --save-dtype fp16)
train() {  # extra flags: the precision
  rm -rf "$run"
  local status=0
  "$trainer" train "${recipe[@]}" "$@" --out "$run" --time-budget "${TIME_BUDGET:-300}" --json \
    >"$out/train.json" 2>"$out/train.log" || status=$?
  grep -v '^epoch [0-9]*/' "$out/train.log" || true
  grep '^epoch [0-9]*/' "$out/train.log" | awk 'NR <= 3 || NR % 10 == 0' || true
  tail -n 2 "$out/train.log"
  return $status
}
started=$(date +%s)
if ! train --amp bf16; then
  # An attend() backend without a backward (a fused forward-only kernel picked for bf16 inputs)
  # leaves the attention weights without gradients; float32 inputs with TF32 matmuls avoid it.
  grep -q "no gradient reached" "$out/train.log" || exit 1
  echo "train_default: retrying in float32 with TF32 matmuls"
  train --amp fp32 --tf32
fi
echo "train_default: training took $(( $(date +%s) - started )) s"

cp "$run/model.safetensors" "$out/vit_fmnist.safetensors"
cp "$run/log.json" "$out/log.json"
"$trainer" eval --weights "$out/vit_fmnist.safetensors" --dataset "fashion-mnist:$data" --device cuda \
  --batch 1000 --json >"$out/eval.json"
cat "$out/eval.json"
# The command that retrains this model: the same recipe with the epoch count the budget left.
"$python" - "$out/log.json" >"$out/command.txt" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))
args = log["command"].split()[2:]
keep, i = [], 0
while i < len(args):
    flag = args[i]
    if flag in ("--time-budget", "--out"):
        i += 2
        continue
    if flag == "--json":
        i += 1
        continue
    if flag == "--dataset":
        keep += [flag, "fashion-mnist"]
    elif flag == "--epochs":
        keep += [flag, str(log["planned_epochs"])]
    else:
        keep.append(flag)
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            keep.append(args[i + 1])
            i += 1
        i += 1
        continue
    i += 2
print("sparsescope train " + " ".join(keep) + " --out run/")
PY
cat "$out/command.txt"
ls -l "$out"
