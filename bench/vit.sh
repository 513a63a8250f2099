#!/usr/bin/env bash
# ViT-S/16 batch inference, sparsescope against timm (SDPA attention) in the same job on the GPU
# machine: batch 64 in bf16 and fp16, and fp32 for reference, each eager and replayed as a CUDA
# graph (both sides). Writes OUT/vit.md.
#   bench/vit.sh BUILD_DIR PYTHON OUT_DIR
set -euo pipefail
build=$1 python=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
model=vit_small_patch16_224
mkdir -p "$out"
results="$out/vit.jsonl"
: > "$results"
for dtype in bf16 fp16 fp32; do
  for graph in "" graph; do
    "$build/bin/sparsescope-bench-vit" "$model" 64 "$dtype" cuda 20 $graph | tee -a "$results"
    "$python" "$here/vit_timm.py" "$model" 64 "$dtype" cuda 20 $graph | tee -a "$results"
  done
done
"$python" - "$results" "$out/vit.md" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault((r["dtype"], r["graph"]), {})["ours" if r["impl"] == "sparsescope" else "timm"] = r
lines = ["| model | batch | dtype | run | sparsescope img/s | timm img/s | ratio |", "|---|---|---|---|---|---|---|"]
for (dtype, graph), pair in by.items():
    ours, timm = pair["ours"], pair["timm"]
    lines.append(f"| {ours['model']} | {ours['batch']} | {dtype} | {'CUDA graph' if graph else 'eager'} | "
                 f"{ours['images_per_second']:.0f} | {timm['images_per_second']:.0f} | "
                 f"{ours['images_per_second'] / timm['images_per_second']:.2f}x |")
lines.append(f"\ntimm: {rows[1]['impl']}")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
