#!/usr/bin/env bash
# DCLIP's table (lib/vlm/dclip/README.md): from a CLIP, train the teacher and then the student on
# the COCO-mini training pairs with boxes, and measure retrieval on the held-out pairs and zero-shot
# top-1 on CIFAR-10 test images before and after distillation. Data from
# scripts/gpu/prepare_clip_data.py (.data/clip).
# Usage: scripts/clip/dclip_table.sh CLIP_WEIGHTS OUT_DIR [SPARSESCOPE [DATA_DIR [DEVICE]]]
#   writes OUT_DIR/{teacher,student}/ (runs), OUT_DIR/{before,after}_{retrieval,zero_shot}.json;
#   TEACHER_ARGS and STUDENT_ARGS (environment) are added to the two training commands (e.g. more
#   epochs than upstream's recipe, whose 5 and 2 epochs assume 100k pairs)
set -euo pipefail
if [ $# -lt 2 ]; then sed -n '2,11p' "$0"; exit 2; fi
root=$(cd "$(dirname "$0")/../.." && pwd)
clip=$1 out=$2 cli=${3:-$root/build/bin/sparsescope} data=${4:-$root/.data/clip} device=${5:-cpu}
vocab=(--vocab "$data/bpe_simple_vocab_16e6.txt.gz")
mkdir -p "$out"
for model in before after; do
  weights=$clip
  if [ "$model" = after ]; then
    rm -rf "$out/teacher" "$out/student"
    "$cli" train --task dclip-teacher --clip "$clip" "${vocab[@]}" --dataset "$data/coco_train.tsv" \
      --eval-dataset "$data/val.tsv" --device "$device" --seed 0 --out "$out/teacher" ${TEACHER_ARGS:-} 2>"$out/teacher.log"
    "$cli" train --task dclip --clip "$clip" --teacher "$out/teacher/model.safetensors" "${vocab[@]}" \
      --dataset "$data/coco_train.tsv" --eval-dataset "$data/val.tsv" --zero-shot "$data/zeroshot" \
      --device "$device" --seed 0 --out "$out/student" ${STUDENT_ARGS:-} 2>"$out/student.log"
    weights=$out/student/model.safetensors
  fi
  "$cli" eval --task retrieval --weights "$weights" "${vocab[@]}" --dataset "$data/val.tsv" --device "$device" \
    --json >"$out/${model}_retrieval.json"
  "$cli" eval --task zero-shot --weights "$weights" "${vocab[@]}" --dataset "$data/zeroshot" --device "$device" \
    --json >"$out/${model}_zero_shot.json"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for model in ("before", "after"):
    r = json.load(open(f"{out}/{model}_retrieval.json"))["retrieval"]
    z = json.load(open(f"{out}/{model}_zero_shot.json"))["zero_shot"]
    i, t = r["image_to_text"], r["text_to_image"]
    print(f"| {model} | {i['r1']:.1f} / {i['r5']:.1f} / {i['r10']:.1f} | {t['r1']:.1f} / {t['r5']:.1f} / {t['r10']:.1f} "
          f"| {z['top1']:.2f} |")
PY
