"""DLGSANet's dynamic depthwise convolution (IDynamicDWConv: per-pixel, per-group 7 x 7 kernels),
forward and forward + backward, at the shapes of DLGSANet-Light x4 (a batch of 16 training patches
of 48 x 48 LR pixels, one LR image of 256, 512 and 1024 pixels a side): sparsescope's fused kernel
(torch.ops.sparsescope.dynamic_depthwise_conv) against the official CuPy kernel (float32 only, as
it is written; with --official, a checkout of NeonLeexiang/DLGSANet, and cupy), the unfold
formulation (the official code's PyTorch equivalent of its CuPy kernel) and 49 shifted products
(our reference), timed in this process with CUDA events (median of --reps after --warmup). Prints a
Markdown report; nothing here asserts a timing.

    python bench/dlgsanet.py --lib build/lib/kernels/libsparsescope_kernels.so [--official DIR] [--out FILE]
"""
import argparse
import importlib.util
import math
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "fixtures"))
from dlgsanet_official import restore_compile_with_cache  # noqa: E402


def unfold_conv(x, weight):
    b, c, h, w = x.shape
    g, k = weight.shape[1], weight.shape[2]
    cols = F.unfold(x, k, padding=k // 2).view(b, g, c // g, k * k, h, w)
    return (cols * weight.view(b, g, 1, k * k, h, w)).sum(3).view(b, c, h, w)


def shifted_conv(x, weight):
    b, c, h, w = x.shape
    g, k = weight.shape[1], weight.shape[2]
    p = F.pad(x, (k // 2,) * 4).view(b, g, c // g, h + k - 1, w + k - 1)
    out = torch.zeros(b, g, c // g, h, w, device=x.device, dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            out = out + p[:, :, :, i:i + h, j:j + w] * weight[:, :, i, j].unsqueeze(2)
    return out.view(b, c, h, w)


def official_conv(checkout):
    """The official IDynamicDWConv's CuPy function (dlgsanet_idynamicdwconv_util.py), float32 only."""
    restore_compile_with_cache()
    path = f"{checkout}/basicsr/archs/dlgsanet_idynamicdwconv_util.py"
    spec = importlib.util.spec_from_file_location("dlgsanet_idynamicdwconv_util", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda x, weight: module._idynamic_cuda(x, weight, stride=1, padding=weight.shape[2] // 2)


def timed(fn, reps, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def row(label, dtype, kind, t, diff):
    ms = " | ".join("-" if math.isnan(v) else f"{v:.3f}" for v in t)
    ratios = " | ".join("-" if math.isnan(v) else f"{v / t[0]:.1f}x" for v in t[1:])
    return f"| {label} | {str(dtype)[6:]} | {kind} | {ms} | {ratios} | {diff} |"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lib", required=True)
    p.add_argument("--official", help="a checkout of NeonLeexiang/DLGSANet (its CuPy kernel runs beside ours)")
    p.add_argument("--out")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    torch.ops.load_library(args.lib)
    ours = torch.ops.sparsescope.dynamic_depthwise_conv
    official, missing = None, ""
    if args.official:
        try:
            official = official_conv(args.official)
        except ImportError as e:  # cupy did not come along (scripts/gpu/fetch_wheels.sh)
            missing = f"The official CuPy kernel could not run: {e}."
    rows = ["| input | dtype | pass | fused (ms) | official CuPy (ms) | unfold (ms) | shifts (ms) | CuPy / fused | "
            "unfold / fused | shifts / fused | max abs diff |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    # DLGSANet-Light: 48 channels in 8 groups of 6 (idynamic_num_heads), kernel 7; batch 16 of 48 x 48
    # LR training patches, one image of 256 to 1024 LR pixels a side at inference.
    shapes = {"16 x 48 x 48 (training patches)": (16, 48, 48), "1 x 256 x 256": (1, 256, 256),
              "1 x 512 x 512": (1, 512, 512), "1 x 1024 x 1024": (1, 1024, 1024)}
    for label, (b, h, w) in shapes.items():
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(b, 48, h, w, device="cuda", dtype=dtype)
            weight = torch.randn(b, 8, 7, 7, h, w, device="cuda", dtype=dtype)
            impls = [ours, official if official and dtype == torch.float32 else None, unfold_conv, shifted_conv]
            with torch.no_grad():
                want = unfold_conv(x.float(), weight.float())
                errs = [(f(x, weight).float() - want).abs().max().item() for f in impls[:2] if f]
                del want
                t = [timed(lambda f=f: f(x, weight), args.reps, args.warmup) if f else math.nan for f in impls]
            diff = "fused " + f"{errs[0]:.1e}" + (f", CuPy {errs[1]:.1e}" if len(errs) > 1 else "") + " (to unfold in float32)"
            rows.append(row(label, dtype, "forward", t, diff))
            xg, wg = x.clone().requires_grad_(), weight.clone().requires_grad_()
            grad = torch.randn_like(x)

            def step(f):
                xg.grad = wg.grad = None
                f(xg, wg).backward(grad)
            t = [timed(lambda f=f: step(f), args.reps, args.warmup) if f else math.nan for f in impls]
            rows.append(row(label, dtype, "forward + backward", t, ""))
            del x, weight, xg, wg, grad
            torch.cuda.empty_cache()
    report = "\n".join([f"# DLGSANet dynamic depthwise convolution ({torch.cuda.get_device_name(0)}, torch {torch.__version__})",
                        "", *rows, "", missing])
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
