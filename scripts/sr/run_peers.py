#!/usr/bin/env python3
"""Runs the pretrained peer SR networks in ../shared/data/sr-weights (IMDN, CFSR: trained on DIV2K by
their authors) through their official code on the benchmark LR files, and writes their SR images as
PNG, for `sparsescope eval --task sr --sr-images` to score in our harness (the DLGSANet README's
table). The official architectures are imported from checkouts given on the command line (never
copied here):

    git clone https://github.com/Zheng222/IMDN /tmp/imdn      # 8f158e6
    git clone https://github.com/Aitical/CFSR /tmp/cfsr       # ec9b237
    .venv/bin/python scripts/sr/run_peers.py --imdn /tmp/imdn --cfsr /tmp/cfsr --out out/peers

Each network runs as its test script does: the LR image as float32 RGB in [0, 1], one image at a
time, the output clamped to [0, 1], times 255 and rounded (IMDN's utils.tensor2np, BasicSR's
tensor2img). OUT/<peer>_x<scale>/<set>/<HR file name> for Set5, Set14 and BSD100 at every scale the
shipped sets and weights share.
"""
import argparse
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def load_imdn(root, scale):
    sys.path.insert(0, str(root))
    architecture = importlib.import_module("model.architecture")
    sys.path.pop(0)
    model = architecture.IMDN(upscale=scale)
    state = torch.load(DATA / "sr-weights" / f"IMDN_x{scale}.pth", map_location="cpu")
    model.load_state_dict({k[7:] if k.startswith("module.") else k: v for k, v in state.items()}, strict=True)
    return model


def load_cfsr(root, scale):
    # cfsr_arch.py registers itself in BasicSR's registry; only that decorator is supplied.
    registry = types.ModuleType("basicsr.utils.registry")
    registry.ARCH_REGISTRY = types.SimpleNamespace(register=lambda *a, **k: (lambda cls: cls))
    for name, module in {"basicsr": types.ModuleType("basicsr"), "basicsr.utils": types.ModuleType("basicsr.utils"),
                         "basicsr.utils.registry": registry}.items():
        sys.modules.setdefault(name, module)
    spec = importlib.util.spec_from_file_location("cfsr_arch", root / "basicsr" / "archs" / "cfsr_arch.py")
    arch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arch)
    # options/test_CFSR_SRx{2,4}.yml, less its `small_kernel: 3`, which the published CFSR class does not take
    model = arch.CFSR(upscale=scale, in_chans=3, dw_size=9, img_range=1.0, depths=[6, 6],
                      embed_dim=48, mlp_ratio=2, upsampler="pixelshuffledirect")
    state = torch.load(DATA / "sr-weights" / f"CFSR_x{scale}.pth", map_location="cpu")
    model.load_state_dict(state.get("params", state), strict=True)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--imdn", required=True, type=Path, help="checkout of Zheng222/IMDN")
    p.add_argument("--cfsr", required=True, type=Path, help="checkout of Aitical/CFSR")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--device", default="cpu")
    p.add_argument("--peers", default="IMDN,CFSR", help="which of IMDN, CFSR to run")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    peers = {"IMDN": lambda s: load_imdn(args.imdn, s), "CFSR": lambda s: load_cfsr(args.cfsr, s)}
    for peer in args.peers.split(","):
        load = peers[peer]
        for scale in (2, 4):
            model = load(scale).eval().to(args.device)
            for name in ("Set5", "Set14", "BSD100"):
                folder = DATA / "sr" / name / f"image_SRF_{scale}"
                if not folder.is_dir():
                    continue
                out = args.out / f"{peer}_x{scale}" / name
                out.mkdir(parents=True, exist_ok=True)
                for lr_path in sorted(folder.glob("*_LR.png")):
                    lr = np.asarray(Image.open(lr_path).convert("RGB"), dtype=np.float32) / 255.0
                    x = torch.from_numpy(lr).permute(2, 0, 1)[None].to(args.device)
                    sr = model(x)[0].float().cpu().clamp_(0, 1)
                    pixels = (sr.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
                    Image.fromarray(pixels).save(out / lr_path.name.replace("_LR.png", "_HR.png"))
                print(f"{peer} x{scale} {name}: {out}", flush=True)


if __name__ == "__main__":
    main()
