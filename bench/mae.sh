#!/usr/bin/env bash
# MAE and MAE-LUT pretraining images/s, sparsescope's trainer against the official code in the same
# job, at the same model (ours for 32 x 32 images), batch and dtype (fp16 autocast with a gradient
# scaler, the official default). Writes OUT/mae.md, OUT/mae.jsonl and OUT/mae.log (the runs themselves
# stay in a scratch folder: the GPU machine sends back few files).
#   bench/mae.sh BUILD_DIR PYTHON OUT_DIR OFFICIAL_DIR [BATCH [DEVICE]]
#   OFFICIAL_DIR  holds checkouts of facebookresearch/mae (mae/) and naver-ai/lut (lut/); their
#                 Python files are enough (scripts/gpu/run.sh's bench-mae documents how they travel)
# Ours: `sparsescope train` for 3 epochs over 20 batches of random 32 x 32 PNGs made here (speed does
# not depend on the pixels), the images/s of the last epoch (its log; the data is decoded once,
# before the first); on a GPU again with --cuda-graph (the step replayed as one CUDA graph from the
# 4th on). Official: bench/mae_official.py, its train_one_epoch over batches
# already in memory (no data loading at all), the second of two epochs.
set -euo pipefail
build=$1 python=$2 out=$3 official=$4 batch=${5:-256} device=${6:-cuda}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results="$out/mae.jsonl" log="$out/mae.log" data="$work/images"
"$python" - "$data" "$((20 * batch))" <<'PY'
import os, sys
import numpy as np
from PIL import Image
root, count = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
for i in range(count):
    folder = os.path.join(root, f"class{i % 10}")
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(os.path.join(folder, f"{i:05d}.png"))
PY
: >"$results"
: >"$log"
amp=(--amp fp16)
[ "$device" = cpu ] && amp=()
# Ours: the trainer on `data`, eagerly and, on a GPU, with --cuda-graph; one JSON line each.
ours() {
  local task=$1 model=$2 run=$3 graph=$4
  local flags=()
  [ "$graph" = true ] && flags=(--cuda-graph)
  "$build/bin/sparsescope-train" train --task "$task" --model "$model" --dataset "$data" --batch "$batch" \
    --epochs 3 --warmup-epochs 1 --device "$device" "${amp[@]}" "${flags[@]}" --seed 0 --out "$run" >>"$log" 2>&1 ||
    { tail -20 "$log"; exit 1; }
  # The last epoch's images/s from the log.
  "$python" - "$run" "$task" "$model" "$batch" "$device" "$graph" <<'PY' | tee -a "$results"
import json, sys
run, task, model, batch, device, graph = sys.argv[1:]
log = json.load(open(f"{run}/log.json"))
print(json.dumps({"impl": "sparsescope", "task": task, "model": model, "batch": int(batch),
                  "dtype": log["options"]["precision"], "device": device, "cuda_graph": graph == "true",
                  "images_per_second": round(log["epochs"][-1]["train_images_per_second"], 1)}))
PY
}
for task in mae mae-lut; do
  model=$([ "$task" = mae ] && echo mae_vit_tiny_patch4_32 || echo lut_vit_tiny_patch4_32)
  ours "$task" "$model" "$work/run_$task" false
  [ "$device" = cpu ] || ours "$task" "$model" "$work/graph_$task" true
  # The official model is built from our model card's configuration.
  config=$("$python" - "$work/run_$task" <<'PY'
import json, struct, sys
with open(f"{sys.argv[1]}/model.safetensors", "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
print(header["__metadata__"]["sparsescope.mae"])
PY
  )
  "$python" "$here/mae_official.py" --mae "$official/mae" --lut "$official/lut" --task "$task" --config "$config" \
    --batch "$batch" --steps 20 --device "$device" 2>>"$log" | tee -a "$results"
done
"$python" - "$results" "$out/mae.md" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
lines = ["| task | model | batch | dtype | sparsescope img/s | with --cuda-graph | official img/s | ratio | ratio with --cuda-graph |",
         "|---|---|---|---|---:|---:|---:|---:|---:|"]
for task in dict.fromkeys(r["task"] for r in rows):
    ours = next(r for r in rows if r["task"] == task and r["impl"] == "sparsescope" and not r["cuda_graph"])
    graph = next((r for r in rows if r["task"] == task and r["impl"] == "sparsescope" and r["cuda_graph"]), None)
    theirs = next(r for r in rows if r["task"] == task and r["impl"] == "official")
    base = theirs["images_per_second"]
    g, g_ratio = (f"{graph['images_per_second']:.0f}", f"{graph['images_per_second'] / base:.2f}x") if graph else ("-", "-")
    lines.append(f"| {task} | {ours['model']} | {ours['batch']} | {ours['dtype']} | {ours['images_per_second']:.0f} | "
                 f"{g} | {base:.0f} | {ours['images_per_second'] / base:.2f}x | {g_ratio} |")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
