#!/usr/bin/env python3
"""Builds the image-text pairs for CLIP pretraining (`sparsescope train --task clip`) from
../shared/data into the ignored .data/clip/, small enough to travel to the GPU machine with the tree
(carry [".deps", ".data/clip"]; 64 MiB in all):

  train.tsv   open_clip's format (filepath, title; tab-separated), and a boxes column (DCLIP's regions:
              "x1,y1,x2,y2;..." in the stored image's pixels, the COCO instance boxes; empty elsewhere):
              - CIFAR-10 train, the first PER_CLASS images of each class folder (JPEG as shipped),
                each with one of OpenAI's 18 CIFAR-10 prompts drawn at random (seed 0);
              - the 1000 ImageNet-sample photos (shorter side to 64, center crop 64, JPEG q 90),
                each with a drawn prompt around its label ("great_white_shark" -> "great white shark");
              - COCO-mini images but the last HELD_OUT by id (shorter side 64, crop), with all captions.
  val.tsv     the HELD_OUT COCO-mini images with their captions and boxes (retrieval R@K).
  coco_train.tsv  the COCO-mini training rows of train.tsv alone (DCLIP's teacher and student data).
  zeroshot/   CIFAR-10 test, the first TEST_PER_CLASS of each class (zero-shot top-1).
  bpe_simple_vocab_16e6.txt.gz   CLIP's vocabulary (the GPU machine has no ../shared).

    .venv/bin/python scripts/gpu/prepare_clip_data.py [--per-class 2000] [--test-per-class 100]
"""
import argparse
import json
import random
import shutil
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
from clip_prompts import CIFAR10_TEMPLATES as TEMPLATES  # noqa: E402


def small(src, dst, size=64):
    """Shorter side to `size` (bicubic), center crop, JPEG quality 90; returns the map of original
    pixel coordinates to the stored image's: (scale, left, top)."""
    image = Image.open(src).convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    dst.parent.mkdir(parents=True, exist_ok=True)
    image.crop((left, top, left + size, top + size)).save(dst, quality=90)
    return scale, left, top


def boxes_text(boxes, scale, left, top, size=64):
    """COCO [x, y, w, h] boxes in the stored image's pixels, clipped; boxes under 2 pixels dropped."""
    out = []
    for x, y, w, h in boxes:
        x1 = min(size, max(0, round(x * scale - left)))
        y1 = min(size, max(0, round(y * scale - top)))
        x2 = min(size, max(0, round((x + w) * scale - left)))
        y2 = min(size, max(0, round((y + h) * scale - top)))
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            out.append(f"{x1},{y1},{x2},{y2}")
    return ";".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / ".data" / "clip"))
    parser.add_argument("--per-class", type=int, default=2000)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--held-out", type=int, default=20)
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    rng = random.Random(0)
    train = []
    for cls in sorted(p.name for p in (data / "cifar10" / "train").iterdir() if p.is_dir()):
        for src in sorted((data / "cifar10" / "train" / cls).iterdir())[: args.per_class]:
            dst = out / "cifar10" / cls / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            train.append((dst.relative_to(out), rng.choice(TEMPLATES).format(cls), ""))
        for src in sorted((data / "cifar10" / "test" / cls).iterdir())[: args.test_per_class]:
            dst = out / "zeroshot" / cls / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    for src in sorted((data / "imagenet-sample").glob("*.JPEG")):
        label = src.stem.split("_", 1)[1].replace("_", " ")
        dst = out / "imagenet" / (src.stem + ".jpg")
        small(src, dst)
        train.append((dst.relative_to(out), rng.choice(TEMPLATES).format(label), ""))
    coco = json.loads((data / "coco-mini" / "annotations" / "captions_val2017.json").read_text())
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    captions = {}
    for a in coco["annotations"]:
        captions.setdefault(a["image_id"], []).append(" ".join(a["caption"].split()))
    instances = json.loads((data / "coco-mini" / "annotations" / "instances_val2017.json").read_text())
    boxes = {}
    for a in instances["annotations"]:
        boxes.setdefault(a["image_id"], []).append(a["bbox"])
    ids = sorted(i for i in files if (data / "coco-mini" / "val2017" / files[i]).exists() and i in captions)
    val, coco_train = [], []
    for n, i in enumerate(ids):
        dst = out / "coco" / files[i]
        scale, left, top = small(data / "coco-mini" / "val2017" / files[i], dst)
        regions = boxes_text(boxes.get(i, []), scale, left, top)
        rows = val if n >= len(ids) - args.held_out else coco_train
        rows.extend((dst.relative_to(out), c, regions) for c in captions[i])
    train += coco_train
    shutil.copyfile(data / "clip" / "bpe_simple_vocab_16e6.txt.gz", out / "bpe_simple_vocab_16e6.txt.gz")
    for name, rows in (("train.tsv", train), ("val.tsv", val), ("coco_train.tsv", coco_train)):
        with open(out / name, "w") as f:
            f.write("filepath\ttitle\tboxes\n")
            f.writelines(f"{path}\t{caption}\t{regions}\n" for path, caption, regions in rows)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{len(train)} training pairs, {len(val)} held-out captions of {args.held_out} images, "
          f"{size / 2**20:.1f} MiB in {out}")


if __name__ == "__main__":
    main()
