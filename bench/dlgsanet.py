"""DLGSANet's dynamic depthwise convolution (IDynamicDWConv: per-pixel, per-group 7 x 7 kernels),
forward and forward + backward, at the shapes of DLGSANet-Light x4 (a batch of 16 training patches
of 48 x 48 LR pixels, one 256 x 256 LR image): sparsescope's fused kernel
(torch.ops.sparsescope.dynamic_depthwise_conv) against the unfold formulation (the official code's
PyTorch equivalent of its CuPy kernel) and 49 shifted products (our reference), timed in this
process with CUDA events (median of --reps after --warmup). Prints a Markdown report; nothing here
asserts a timing.

    python bench/dlgsanet.py --lib build/lib/kernels/libsparsescope_kernels.so [--out FILE]
"""
import argparse
import statistics

import torch
import torch.nn.functional as F


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


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lib", required=True)
    p.add_argument("--out")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    torch.ops.load_library(args.lib)
    ours = torch.ops.sparsescope.dynamic_depthwise_conv
    rows = ["| input | dtype | pass | fused (ms) | unfold (ms) | shifts (ms) | unfold / fused | shifts / fused |",
            "|---|---|---|---:|---:|---:|---:|---:|"]
    # DLGSANet-Light: 48 channels in 8 groups of 6 (idynamic_num_heads), kernel 7; batch 16 of 48 x 48
    # LR training patches, one 256 x 256 image at inference.
    for label, (b, h, w) in {"16 x 48 x 48 (training patches)": (16, 48, 48), "1 x 256 x 256": (1, 256, 256)}.items():
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(b, 48, h, w, device="cuda", dtype=dtype)
            weight = torch.randn(b, 8, 7, 7, h, w, device="cuda", dtype=dtype)
            with torch.no_grad():
                err = (ours(x, weight).float() - unfold_conv(x.float(), weight.float())).abs().max().item()
                t = [timed(lambda f=f: f(x, weight), args.reps, args.warmup) for f in (ours, unfold_conv, shifted_conv)]
            rows.append(f"| {label} | {str(dtype)[6:]} | forward | {t[0]:.3f} | {t[1]:.3f} | {t[2]:.3f} | "
                        f"{t[1] / t[0]:.1f}x | {t[2] / t[0]:.1f}x |")
            xg, wg = x.clone().requires_grad_(), weight.clone().requires_grad_()
            grad = torch.randn_like(x)

            def step(f):
                xg.grad = wg.grad = None
                f(xg, wg).backward(grad)
            t = [timed(lambda f=f: step(f), args.reps, args.warmup) for f in (ours, unfold_conv, shifted_conv)]
            rows.append(f"| {label} | {str(dtype)[6:]} | forward + backward | {t[0]:.3f} | {t[1]:.3f} | {t[2]:.3f} | "
                        f"{t[1] / t[0]:.1f}x | {t[2] / t[0]:.1f}x |")
            rows[-2] += f" <!-- max |fused - unfold| {err:.2e} -->"
    report = "\n".join([f"# DLGSANet dynamic depthwise convolution ({torch.cuda.get_device_name(0)}, torch {torch.__version__})",
                        "", *rows, ""])
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
