#!/usr/bin/env bash
# Trains DLGSANet (sparsescope train --task sr, the official recipe) on a CUDA machine in resumable
# chunks, and evaluates the EMA weights it saved on the benchmark sets given.
# Usage: scripts/gpu/train_sr.sh BUILD_DIR OUT_DIR TRAIN_DIR EVAL_DIR [MODEL [BUDGET [EPOCHS]]]
#   BUILD_DIR  a CUDA build folder with sparsescope-train built: run it through `run.sh train-sr`,
#              which sets the environment up, builds the trainer and starts OUT_DIR/train.log
#   OUT_DIR    receives the run (model.safetensors, checkpoint.safetensors, log.json), train.log (the
#              build's output, the GPU, the trainer's messages) and eval_<set>.json, with run.sh's
#              run.log 7 files (the machine sends back 8); a checkpoint already in OUT_DIR/run is
#              resumed (copy the previous chunk's run folder there)
#   TRAIN_DIR  HR photos (LR made by MATLAB's bicubic); EVAL_DIR a benchmark set (Set5 as shipped)
#   MODEL      default dlgsanet_light_x4; BUDGET seconds of this chunk (default 420); EPOCHS the whole
#              run's epochs (default 60, each 20 passes over TRAIN_DIR in 192-pixel HR patches)
# SR_CUDA_GRAPH=1 trains with --cuda-graph (the step replayed as one CUDA graph).
set -uo pipefail
if [ $# -lt 4 ]; then sed -n '2,14p' "$0"; exit 2; fi
build=$1 out=$2 train=$3 eval=$4 model=${5:-dlgsanet_light_x4} budget=${6:-420} epochs=${7:-60}
mkdir -p "$out"
tr="$build/bin/sparsescope-train"

run="$out/run"
resume=()
[ -f "$run/checkpoint.safetensors" ] && resume=(--resume)
graph=()
[ "${SR_CUDA_GRAPH:-0}" = 1 ] && graph=(--cuda-graph)
# The official options (options/DLGSANet_SISR/train_*.yml) are the task's defaults: Adam 5e-4 with
# betas (0.9, 0.99), no decay, L1, EMA 0.999, gt_size 192, flips and transposes, halvings at 50, 80,
# 90 and 95 % of the run. Here: batch 16 on one GPU (8 per GPU there), TF32 matmuls.
"$tr" train --task sr --model "$model" --dataset "$train" --eval-dataset "$eval" --repeat 20 --batch 16 \
  --epochs "$epochs" --stop-after-seconds "$budget" --device cuda --tf32 "${graph[@]}" --seed 0 --out "$run" "${resume[@]}" --json \
  >"$out/train.json" 2>>"$out/train.log"
status=$?
rm -f "$run/.sparsescope.lock"  # released with the trainer; one file fewer to send back
tail -n 5 "$out/train.log"
[ -f "$run/model.safetensors" ] && for set in "$eval"; do
  "$tr" eval --task sr --weights "$run/model.safetensors" --dataset "$set" --device cuda --json \
    >"$out/eval_$(basename "$set").json" 2>>"$out/train.log"
done
exit $status
