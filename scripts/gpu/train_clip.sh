#!/usr/bin/env bash
# Pretrains a small CLIP (sparsescope train --task clip, open_clip's recipe) on a CUDA machine in
# resumable chunks, on the pairs made by scripts/gpu/prepare_clip_data.py.
# Usage: scripts/gpu/train_clip.sh BUILD_DIR OUT_DIR DATA_DIR [MODEL [BUDGET [EPOCHS]]]
#   BUILD_DIR  a CUDA build folder with sparsescope-train built (run it through `run.sh train-clip`);
#              the run lives in BUILD_DIR/clip-run, resumed while the machine stays warm (its
#              checkpoint, with AdamW's moments, is too large to come back through $OUT)
#   OUT_DIR    receives log.json, train.log and model.safetensors in parts of 15 MiB
#              (model.safetensors.part-aa, -ab, ...: `cat model.safetensors.part-* > model.safetensors`)
#   DATA_DIR   train.tsv, val.tsv, zeroshot/ and the vocabulary (.data/clip)
#   MODEL      default clip_tiny; BUDGET seconds of this chunk (default 420); EPOCHS of the whole run
#              (default 40, each one pass over train.tsv)
set -uo pipefail
if [ $# -lt 3 ]; then sed -n '2,12p' "$0"; exit 2; fi
build=$1 out=$2 data=$3 model=${4:-clip_tiny} budget=${5:-420} epochs=${6:-40}
mkdir -p "$out"
run="$build/clip-run"
resume=()
[ -f "$run/checkpoint.safetensors" ] && resume=(--resume)
# open_clip's defaults are the task's (AdamW 5e-4, betas (0.9, 0.98), eps 1e-6, decay 0.2, cosine);
# batch 256, one warmup epoch, bf16 autocast and TF32 matmuls on one GPU.
"$build/bin/sparsescope-train" train --task clip --model "$model" --dataset "$data/train.tsv" \
  --eval-dataset "$data/val.tsv" --zero-shot "$data/zeroshot" --vocab "$data/bpe_simple_vocab_16e6.txt.gz" \
  --epochs "$epochs" --stop-after-seconds "$budget" --device cuda --amp bf16 --tf32 --seed 0 \
  --save-dtype fp16 --out "$run" "${resume[@]}" --json >"$out/train.json" 2>>"$out/train.log"
status=$?
tail -n 5 "$out/train.log"
if [ -f "$run/model.safetensors" ]; then
  cp "$run/log.json" "$out/"
  split -b 15M "$run/model.safetensors" "$out/model.safetensors.part-"
fi
exit $status
