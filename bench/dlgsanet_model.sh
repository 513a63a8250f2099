#!/usr/bin/env bash
# Whole-model DLGSANet images/s, sparsescope (bench/dlgsanet_throughput.cpp) against the official
# model with its CuPy kernel (bench/dlgsanet_official.py) in the same job on the GPU machine: Light
# and Large x4, inference on one 256 x 256 LR image (eval mode, TLC) and a training step on 16
# patches of 48 x 48 LR pixels, float32 (the official kernel's only float type) and, ours alone,
# bfloat16; and training steps through `sparsescope train --task sr`, eagerly and with --cuda-graph.
# Writes OUT/dlgsanet_model.md and OUT/dlgsanet_model.jsonl.
#   bench/dlgsanet_model.sh BUILD_DIR PYTHON OUT_DIR DLGSANET_CHECKOUT
set -euo pipefail
build=$1 python=$2 out=$3 official=$4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results="$out/dlgsanet_model.jsonl"
: >"$results"
for config in light_x4 large_x4; do
  for shape in "infer 1 256" "train 16 48"; do
    read -r mode batch size <<<"$shape"
    for dtype in fp32 bf16; do
      "$build/bin/sparsescope-bench-dlgsanet" "dlgsanet_$config" "$mode" "$batch" "$size" "$dtype" cuda | tee -a "$results"
    done
    "$python" "$here/dlgsanet_official.py" --dlgsanet "$official" "$config" "$mode" "$batch" "$size" | tee -a "$results"
  done
done
# Training through the trainer as users run it (sparsescope train --task sr: the official recipe,
# Adam and the EMA update, float32), eagerly and with --cuda-graph, on 20 random 256^2 HR photos
# made here (25 steps of 16 patches an epoch): the images/s of the third epoch.
hr="$work/hr"
"$python" - "$hr" <<'PY'
import os, sys
import numpy as np
from PIL import Image
os.makedirs(sys.argv[1], exist_ok=True)
rng = np.random.default_rng(0)
for i in range(20):
    Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(os.path.join(sys.argv[1], f"{i:02d}.png"))
PY
[ -x "$build/bin/sparsescope-train" ] || echo "dlgsanet_model: no $build/bin/sparsescope-train, so no trainer rows"
for config in light_x4 large_x4; do
  [ -x "$build/bin/sparsescope-train" ] || break
  for graph in false true; do
    flags=()
    [ "$graph" = true ] && flags=(--cuda-graph)
    run="$work/train_${config}_$graph"
    "$build/bin/sparsescope-train" train --task sr --model "dlgsanet_$config" --dataset "$hr" --repeat 20 --batch 16 \
      --epochs 3 --device cuda "${flags[@]}" --seed 0 --out "$run" >>"$work/train.log" 2>&1 ||
      { tail -20 "$work/train.log"; exit 1; }
    "$python" - "$run" "$config" "$graph" <<'PY' | tee -a "$results"
import json, sys
run, config, graph = sys.argv[1:]
log = json.load(open(f"{run}/log.json"))
print(json.dumps({"impl": "sparsescope", "via": "trainer" + (", --cuda-graph" if graph == "true" else ""),
                  "model": f"dlgsanet_{config}", "mode": "train", "batch": 16, "size": 48, "dtype": "fp32",
                  "device": "cuda", "images_per_second": round(log["epochs"][-1]["train_images_per_second"], 2)}))
PY
  done
done
"$python" - "$results" "$out/dlgsanet_model.md" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
key = lambda r: (r["model"], r["mode"], r["batch"], r["size"])
official = {key(r): r for r in rows if r["impl"] == "official"}
lines = ["| model | pass | batch x LR size | dtype | sparsescope img/s | official img/s (fp32, CuPy) | ratio |",
         "|---|---|---|---|---:|---:|---:|"]
for r in rows:
    if r["impl"] != "sparsescope":
        continue
    theirs = official[key(r)]["images_per_second"]
    what = "inference (TLC)" if r["mode"] == "infer" else "training step"
    if "via" in r:
        what += f" ({r['via']})"
    lines.append(f"| {r['model']} | {what} | {r['batch']} x {r['size']}^2 | {r['dtype']} | {r['images_per_second']:.1f} | "
                 f"{theirs:.1f} | {r['images_per_second'] / theirs:.2f}x |")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
