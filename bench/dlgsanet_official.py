"""Images per second of the official DLGSANet (basicsr/archs/dlgsanet_arch.py with its CuPy dynamic
convolution, imported from a checkout by scripts/fixtures/dlgsanet_official.py; random weights),
the counterpart of sparsescope-bench-dlgsanet: `infer` in eval mode (TLC, batch 1 as the official
code allows) on SIZE x SIZE LR images, `train` one optimisation step (train mode, L1 loss, Adam) on
BATCH patches of SIZE x SIZE LR pixels. float32 only: the CuPy kernel is written for float and
double. cuDNN's benchmark mode is on, as BasicSR's train.py and test.py set it. Prints one JSON
line.

    python bench/dlgsanet_official.py --dlgsanet CHECKOUT light_x4 infer 1 256 [ITERS]
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "fixtures"))
from dlgsanet_official import build, load_official  # noqa: E402


def median_ms(fn, iters, rounds=5):
    """Milliseconds per call: the median over `rounds` rounds of `iters` calls after 3 warm-up calls,
    waiting for the device at the end of each round (bench/timing.h's rule)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3 / iters)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dlgsanet", required=True, type=Path, help="a checkout of NeonLeexiang/DLGSANet")
    p.add_argument("config", help="e.g. light_x4")
    p.add_argument("mode", choices=["infer", "train"])
    p.add_argument("batch", type=int)
    p.add_argument("size", type=int)
    p.add_argument("iters", type=int, nargs="?", default=10)
    args = p.parse_args()
    size_name, scale = args.config.split("_x")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True  # as basicsr/train.py and test.py run
    model = build(load_official(args.dlgsanet, cupy_kernel=True), size_name, int(scale)).cuda()
    lr = torch.rand(args.batch, 3, args.size, args.size, device="cuda")
    if args.mode == "infer":
        model.eval()
        with torch.no_grad():
            ms = median_ms(lambda: model(lr), args.iters)
    else:
        model.train()
        hr = torch.rand(args.batch, 3, int(scale) * args.size, int(scale) * args.size, device="cuda")
        adam = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.99))

        def step():
            adam.zero_grad()
            F.l1_loss(model(lr), hr).backward()
            adam.step()
        ms = median_ms(step, args.iters)
    print(json.dumps({"impl": "official", "model": f"dlgsanet_{args.config}", "mode": args.mode, "batch": args.batch,
                      "size": args.size, "dtype": "fp32", "device": "cuda",
                      "images_per_second": round(1e3 * args.batch / ms, 2)}))


if __name__ == "__main__":
    main()
