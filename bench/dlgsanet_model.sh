#!/usr/bin/env bash
# Whole-model DLGSANet images/s, sparsescope (bench/dlgsanet_throughput.cpp) against the official
# model with its CuPy kernel (bench/dlgsanet_official.py) in the same job on the GPU machine: Light
# and Large x4, inference on one 256 x 256 LR image (eval mode, TLC) and a training step on 16
# patches of 48 x 48 LR pixels, float32 (the official kernel's only float type) and, ours alone,
# bfloat16. Writes OUT/dlgsanet_model.md and OUT/dlgsanet_model.jsonl.
#   bench/dlgsanet_model.sh BUILD_DIR PYTHON OUT_DIR DLGSANET_CHECKOUT
set -euo pipefail
build=$1 python=$2 out=$3 official=$4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
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
    lines.append(f"| {r['model']} | {what} | {r['batch']} x {r['size']}^2 | {r['dtype']} | {r['images_per_second']:.1f} | "
                 f"{theirs:.1f} | {r['images_per_second'] / theirs:.2f}x |")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
