#!/usr/bin/env python3
"""Exports the bundled Fashion-MNIST samples (assets/samples/fashion-mnist/): the first test image
of each class as an 8-bit gray PNG, exactly the dataset's pixels, with their labels.

  <test index>_<class>.png   28 x 28 gray, e.g. 00000_ankle_boot.png
  labels.txt                 one line per PNG: file, class index, class name (tab-separated)
  classes.txt                the ten class names in label order (sparsescope infer --labels)

Reads the IDX files of Debian's dataset-fashion-mnist (or --data DIR). Fashion-MNIST is
Zalando Research's, MIT licence.

Usage: .venv/bin/python scripts/assets/export_fashion_mnist_samples.py [--data DIR]
"""
import argparse
import gzip
import pathlib
import struct

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path: pathlib.Path) -> np.ndarray:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    assert data[0] == 0 and data[1] == 0 and data[2] == 0x08, f"{path}: not a uint8 IDX file"
    rank = data[3]
    shape = struct.unpack(f">{rank}I", data[4 : 4 + 4 * rank])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def find(folder: pathlib.Path, stem: str) -> pathlib.Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise SystemExit(f"{folder / stem}(.gz) not found: install Debian's dataset-fashion-mnist or pass --data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=pathlib.Path, default=pathlib.Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "assets" / "samples" / "fashion-mnist")
    args = parser.parse_args()
    images = read_idx(find(args.data, "t10k-images-idx3-ubyte"))
    labels = read_idx(find(args.data, "t10k-labels-idx1-ubyte"))
    args.out.mkdir(parents=True, exist_ok=True)
    lines = []
    for label, name in enumerate(CLASSES):
        index = int(np.flatnonzero(labels == label)[0])
        slug = name.lower().replace("/", "_").replace(" ", "_").replace("-", "_")
        file = f"{index:05d}_{slug}.png"
        Image.fromarray(images[index]).save(args.out / file)
        lines.append(f"{file}\t{label}\t{name}")
    (args.out / "labels.txt").write_text("\n".join(sorted(lines)) + "\n")
    (args.out / "classes.txt").write_text("\n".join(CLASSES) + "\n")


if __name__ == "__main__":
    main()
