#!/usr/bin/env bash
# Pretrains a small MAE or MAE-LUT on CIFAR-10, scores the pretrained encoder by k-NN and by a linear
# probe, and fine-tunes it, in one call of the GPU machine (each training stage under a wall-time
# budget that plans its epochs: --time-budget). A checkpoint (with AdamW's moments) does not fit what
# travels with a call beside the data, so a training stage is whole within one call; a fine-tuning
# may take a call of its own, from the float16 encoder an earlier call sent back (MAE_PRETRAINED).
# Usage: scripts/gpu/train_mae.sh BUILD_DIR OUT_DIR DATA_DIR TASK [PRE_BUDGET [FT_BUDGET [SEEDS [LP_BUDGET]]]]
#   BUILD_DIR  a CUDA build folder with sparsescope-train built (run it through `run.sh train-mae`)
#   OUT_DIR    receives, for each seed N, seedN.tar (train.log: the GPU and the trainer's messages;
#              pre_log.json, knn.json, probe_lbfgs.json, lp_log.json, ft_log.json and the fine-tuned
#              ft_model.safetensors) and, for the first seed, seedN.pre_model.safetensors (the
#              pretrained model); both models in float16 (fp32 would need two files each, of the 8 a
#              call sends back; k-NN, probe and fine-tuning start from the float16 weights)
#   DATA_DIR   train/ and test/, class folders (CIFAR-10 as shipped)
#   TASK       mae or mae-lut; PRE_BUDGET, FT_BUDGET and LP_BUDGET seconds (default 240, 200, 60);
#              SEEDS, e.g. "0 1 2" (default 0): one run a seed, all at once on the one GPU (a
#              ViT-Ti/4 step leaves most of an H100 idle), each stage under the same wall budget
# MAE_PRETRAINED=FILE fine-tunes that pretrained model (a seedN.pre_model.safetensors, carried) and
# skips pretraining, k-NN and probe; one seed, the one it was pretrained with.
# Pretraining and fine-tuning profile 3 steps (--profile-steps): where their time goes is in train.log.
# MAE_CUDA_GRAPH=1 pretrains and fine-tunes with --cuda-graph.
# MAE_PRE_EPOCHS=N pretrains N epochs instead of PRE_BUDGET seconds.
# MAE_DEVICE=cpu runs it on the CPU (a smoke test of the script).
set -uo pipefail
if [ $# -lt 4 ]; then sed -n '2,25p' "$0"; exit 2; fi
build=$1 out=$2 data=$3 task=$4 pre_budget=${5:-240} ft_budget=${6:-200} seeds=(${7:-0}) lp_budget=${8:-60}
pretrained=${MAE_PRETRAINED:-}
if [ -n "$pretrained" ]; then
  [ -f "$pretrained" ] || { echo "train_mae: MAE_PRETRAINED '$pretrained' is not a file"; exit 2; }
  [ ${#seeds[@]} -eq 1 ] || { echo "train_mae: MAE_PRETRAINED fine-tunes one model: give one seed, not '${seeds[*]}'"; exit 2; }
fi
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
# Pretraining's length: PRE_BUDGET seconds of wall time (the epochs planned to fit), or with
# MAE_PRE_EPOCHS=N that many epochs whatever they take (MAE and MAE-LUT at equal epochs, as the
# papers compare them; LUT's two views and teacher take about twice MAE's time an epoch).
pre_plan=(--epochs 1000 --time-budget "$pre_budget")
[ -n "${MAE_PRE_EPOCHS:-}" ] && pre_plan=(--epochs "$MAE_PRE_EPOCHS")
work=$(mktemp -d)

# One seed's run into $work/seed<N>/ (log: train.log there); its exit status is the run's.
run_seed() {
  local seed=$1 dir=$work/seed$1 status=0
  local log=$dir/train.log pre=$pretrained
  mkdir -p "$dir"
  [ -f "$out/train.log" ] && cp "$out/train.log" "$log"  # the build and the GPU (run.sh)
  if [ -z "$pre" ]; then
    # Pretraining: main_pretrain.py's recipe (lib/vision/mae/README.md) at batch 512 with lr = blr
    # 1.5e-4 x 512 / 256 for both tasks (one recipe, so that only the loss differs), 5 warmup epochs,
    # cosine to 0. The k-NN of every epoch would encode the 50,000 training images again: once at
    # the end instead.
    "$tr" train --task "$task" --model "$model" --dataset "$data/train" --eval-dataset "$data/test" \
      "${pre_plan[@]}" --batch 512 --lr 3e-4 --min-lr 0 --warmup-epochs 5 \
      --weight-decay 0.05 --knn-k 0 --device "$device" "${fast[@]}" "${graph[@]}" --seed "$seed" --save-dtype fp16 \
      --profile-steps 3 --out "$dir/pre" >>"$log" 2>&1 || status=1
    [ -f "$dir/pre/model.safetensors" ] || return 1
    pre=$dir/pre/model.safetensors
    cp "$dir/pre/log.json" "$dir/pre_log.json"
    "$tr" eval --task knn --weights "$pre" --dataset "$data" --device "$device" --json \
      >"$dir/knn.json" 2>>"$log" || status=1
    "$tr" eval --task linear-probe --weights "$pre" --dataset "$data" --device "$device" --json \
      >"$dir/probe_lbfgs.json" 2>>"$log" || status=1
    # Linear probe: main_linprobe.py's recipe (LARS, no weight decay, 10 warmup epochs) at batch
    # 4096, lr = blr 0.1 x 4096 / 256.
    "$tr" train --task mae-linprobe --pretrained "$pre" --dataset "$data/train" \
      --eval-dataset "$data/test" --epochs 90 --time-budget "$lp_budget" --batch 4096 --lr 1.6 --warmup-epochs 10 \
      --warmup-lr 0 --min-lr 0 --weight-decay 0 --device "$device" "${fast[@]}" --seed "$seed" \
      --out "$dir/lp" >>"$log" 2>&1 || status=1
    [ -f "$dir/lp/log.json" ] && cp "$dir/lp/log.json" "$dir/lp_log.json"
  fi
  # Fine-tuning: main_finetune.py's recipe (layer decay 0.75, drop path 0.1, RandAugment, mixup and
  # cutmix, label smoothing) at batch 512, lr = blr 5e-4 x 512 / 256.
  "$tr" train --task mae-finetune --pretrained "$pre" --dataset "$data/train" \
    --eval-dataset "$data/test" --epochs 400 --time-budget "$ft_budget" --batch 512 --lr 1e-3 \
    --warmup-epochs 5 --warmup-lr 0 --min-lr 1e-6 --weight-decay 0.05 --device "$device" "${fast[@]}" "${graph[@]}" \
    --seed "$seed" --save-dtype fp16 --profile-steps 3 --out "$dir/ft" >>"$log" 2>&1 || status=1
  [ -f "$dir/ft/model.safetensors" ] && cp "$dir/ft/model.safetensors" "$dir/ft_model.safetensors" &&
    cp "$dir/ft/log.json" "$dir/ft_log.json"
  return $status
}

pids=()
for seed in "${seeds[@]}"; do run_seed "$seed" & pids+=($!); done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done

# What comes back: a tar a seed (logs, scores, the fine-tuned model) and the first seed's
# pretrained model.
for seed in "${seeds[@]}"; do
  dir=$work/seed$seed
  [ "$seed" = "${seeds[0]}" ] && [ -f "$dir/pre/model.safetensors" ] &&
    cp "$dir/pre/model.safetensors" "$out/seed$seed.pre_model.safetensors"
  (cd "$dir" && tar -cf "$out/seed$seed.tar" $(ls train.log ./*.json ft_model.safetensors 2>/dev/null))
  echo "-- seed $seed"
  grep -E "^epoch|top-1|knn" "$dir/train.log" | tail -n 8
done
rm -rf "$work"
exit $status
