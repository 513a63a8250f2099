#!/usr/bin/env bash
# Pretrains a small MAE or MAE-LUT on CIFAR-10, scores the pretrained encoder by k-NN and by a linear
# probe, and fine-tunes it, in one call of the GPU machine (each training stage under a wall-time
# budget that plans its epochs: --time-budget). A checkpoint (with AdamW's moments) does not fit what
# travels with a call beside the data, so a run is whole within one call.
# Usage: scripts/gpu/train_mae.sh BUILD_DIR OUT_DIR DATA_DIR TASK [PRE_BUDGET [FT_BUDGET [SEED [LP_BUDGET]]]]
#   BUILD_DIR  a CUDA build folder with sparsescope-train built (run it through `run.sh train-mae`)
#   OUT_DIR    receives train.log (the build, the GPU, the trainer's messages), pre_log.json,
#              knn.json, lp_log.json, ft_log.json, the pretrained pre_model.safetensors and the
#              fine-tuned ft_model.safetensors (both float16: fp32 would need two files, of the 8 a
#              call sends back; k-NN, probe and fine-tuning start from the float16 weights)
#   DATA_DIR   train/ and test/, class folders (CIFAR-10 as shipped)
#   TASK       mae or mae-lut; PRE_BUDGET, FT_BUDGET and LP_BUDGET seconds (default 240, 200, 60);
#              SEED (0)
# Pretraining and fine-tuning profile 3 steps (--profile-steps): where their time goes is in train.log.
# MAE_CUDA_GRAPH=1 pretrains and fine-tunes with --cuda-graph.
# MAE_DEVICE=cpu runs it on the CPU (a smoke test of the script).
set -uo pipefail
if [ $# -lt 4 ]; then sed -n '2,17p' "$0"; exit 2; fi
build=$1 out=$2 data=$3 task=$4 pre_budget=${5:-240} ft_budget=${6:-200} seed=${7:-0} lp_budget=${8:-60}
case "$task" in
  mae) model=mae_vit_tiny_patch4_32 ;;
  mae-lut) model=lut_vit_tiny_patch4_32 ;;
  *) echo "train_mae: TASK must be mae or mae-lut, not '$task'"; exit 2 ;;
esac
mkdir -p "$out"
tr="$build/bin/sparsescope-train"
device=${MAE_DEVICE:-cuda} fast=(--amp bf16 --tf32)
[ "$device" = cpu ] && fast=()
graph=()  # MAE_CUDA_GRAPH=1: pretraining and fine-tuning replay their step as a CUDA graph
[ "${MAE_CUDA_GRAPH:-0}" = 1 ] && [ "$device" != cpu ] && graph=(--cuda-graph)
work=$(mktemp -d)
status=0

# Pretraining: main_pretrain.py's recipe (lib/vision/mae/README.md) at batch 512 with lr = blr 1.5e-4
# x 512 / 256 for both tasks (one recipe, so that only the loss differs), 5 warmup epochs, cosine to 0.
# The k-NN of every epoch would encode the 50,000 training images again: once at the end instead.
"$tr" train --task "$task" --model "$model" --dataset "$data/train" --eval-dataset "$data/test" \
  --epochs 1000 --time-budget "$pre_budget" --batch 512 --lr 3e-4 --min-lr 0 --warmup-epochs 5 \
  --weight-decay 0.05 --knn-k 0 --device "$device" "${fast[@]}" "${graph[@]}" --seed "$seed" --save-dtype fp16 \
  --profile-steps 3 --out "$work/pre" \
  >>"$out/train.log" 2>&1 || status=1
if [ -f "$work/pre/model.safetensors" ]; then
  cp "$work/pre/log.json" "$out/pre_log.json"
  cp "$work/pre/model.safetensors" "$out/pre_model.safetensors"
  "$tr" eval --task knn --weights "$work/pre/model.safetensors" --dataset "$data" --device "$device" --json \
    >"$out/knn.json" 2>>"$out/train.log" || status=1
  # Linear probe: main_linprobe.py's recipe (LARS, no weight decay, 10 warmup epochs) at batch 4096,
  # lr = blr 0.1 x 4096 / 256.
  "$tr" train --task mae-linprobe --pretrained "$work/pre/model.safetensors" --dataset "$data/train" \
    --eval-dataset "$data/test" --epochs 90 --time-budget "$lp_budget" --batch 4096 --lr 1.6 --warmup-epochs 10 \
    --warmup-lr 0 --min-lr 0 --weight-decay 0 --device "$device" "${fast[@]}" --seed "$seed" \
    --out "$work/lp" >>"$out/train.log" 2>&1 || status=1
  [ -f "$work/lp/log.json" ] && cp "$work/lp/log.json" "$out/lp_log.json"
  # Fine-tuning: main_finetune.py's recipe (layer decay 0.75, drop path 0.1, RandAugment, mixup and
  # cutmix, label smoothing) at batch 512, lr = blr 5e-4 x 512 / 256.
  "$tr" train --task mae-finetune --pretrained "$work/pre/model.safetensors" --dataset "$data/train" \
    --eval-dataset "$data/test" --epochs 400 --time-budget "$ft_budget" --batch 512 --lr 1e-3 \
    --warmup-epochs 5 --warmup-lr 0 --min-lr 1e-6 --weight-decay 0.05 --device "$device" "${fast[@]}" "${graph[@]}" \
    --seed "$seed" --save-dtype fp16 --profile-steps 3 --out "$work/ft" >>"$out/train.log" 2>&1 || status=1
  [ -f "$work/ft/model.safetensors" ] && cp "$work/ft/model.safetensors" "$out/ft_model.safetensors" &&
    cp "$work/ft/log.json" "$out/ft_log.json"
fi
rm -rf "$work"
grep -E "^epoch|top-1|knn" "$out/train.log" | tail -n 8
exit $status
