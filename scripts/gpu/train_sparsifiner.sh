#!/usr/bin/env bash
# Trains Sparsifiner from the bundled dense model at several keep rates on a CUDA machine, evaluates
# each (accuracy, MHSA FLOPs, mask recall against the dense model) and runs the attention benchmark.
# Usage: scripts/gpu/train_sparsifiner.sh BUILD_DIR OUT_DIR FMNIST_DIR [KEEPS [BUDGET]]
#   BUILD_DIR   a CUDA build with SPARSESCOPE_BUILD_TRAINER and SPARSESCOPE_BUILD_BENCH (configured
#               as scripts/gpu/train_default.sh does); sparsescope-train and the bench are built here
#   OUT_DIR     receives per keep rate sparsifiner_k<KEEP>.safetensors and logs/k<KEEP>_*.json, and
#               logs/bench.md; the runs themselves stay in BUILD_DIR/sparsifiner-k<KEEP>
#   FMNIST_DIR  the four Fashion-MNIST IDX files, .gz or not
#   KEEPS       keep rates, default "0.1 0.25 0.5"; BUDGET: seconds of phase 2 each, default 100
set -uo pipefail
if [ $# -lt 3 ]; then sed -n '2,11p' "$0"; exit 2; fi
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$1 out=$2 data="fashion-mnist:$3" keeps=${4:-0.1 0.25 0.5} budget=${5:-100}
cmake --build "$build" --target sparsescope-train sparsescope-bench-sparsifiner -j "$(nproc)" | tail -n 1 || exit 1
tr="$build/bin/sparsescope-train" teacher="$root/assets/models/vit_fmnist.safetensors"
mkdir -p "$out/logs"
nvidia-smi --query-gpu=name --format=csv,noheader >"$out/logs/gpu.txt" 2>&1
for k in $keeps; do
  run="$build/sparsifiner-k$k"
  rm -rf "$run"
  "$tr" train --method sparsifiner --teacher "$teacher" --keep-rate "$k" --dataset "$data" --reconstruct-epochs 3 \
    --epochs 40 --batch 512 --lr 1e-4 --min-lr 1e-6 --warmup-epochs 1 --weight-decay 0.05 --label-smoothing 0.1 \
    --clip-grad 1 --random-erasing 0.25 --device cuda --amp bf16 --seed 0 --save-dtype fp16 --time-budget "$budget" \
    --out "$run" --json >"$out/logs/k${k}_train.json" 2>"$out/logs/k${k}_train.log" || { tail "$out/logs/k${k}_train.log"; exit 1; }
  cp "$run/log.json" "$out/logs/k${k}_log.json"
  cp "$run/reconstruct/log.json" "$out/logs/k${k}_reconstruct_log.json"
  for phase in reconstruct final; do
    weights=$([ $phase = final ] && echo "$run/model.safetensors" || echo "$run/reconstruct/model.safetensors")
    "$tr" eval --weights "$weights" --dataset "$data" --device cuda --batch 1000 --recall-against "$teacher" \
      --recall-images 2000 --json >"$out/logs/k${k}_${phase}_eval.json"
  done
  "$tr" eval --weights "$run/model.safetensors" --method dense --dataset "$data" --device cuda --batch 1000 --json \
    >"$out/logs/k${k}_final_dense_eval.json"
  cp "$run/model.safetensors" "$out/sparsifiner_k$k.safetensors"
done
"$tr" eval --weights "$teacher" --dataset "$data" --device cuda --batch 1000 --json >"$out/logs/teacher_eval.json"
"$build/bin/sparsescope-bench-sparsifiner" 64 bf16 0.25 cuda 2>"$out/logs/bench.jsonl" | tee "$out/logs/bench.md"
