"""Whether fusing SparseGSA's ReLU channel attention would pay: the share of DLGSANet's time spent in
its attention core (SparseAttention._forward of the official model: L2-normalise q and k, q k^T times
the temperature, ReLU, times v), and how far that core is from the bound any fused kernel has (reading
q, k, v and writing the output once, at the GPU's memory bandwidth measured here by a copy).
The official Light and Large x4 models (random weights) run with the dynamic convolution swapped
for sparsescope's fused kernel, so that the rest of the model costs what ours does; CUDA events around
each core call, summed, against the whole forward (inference with TLC on one LR image, and the
forward of a training step on 16 patches of 48 x 48; float32, and bfloat16 by autocast). Prints a Markdown table; asserts nothing.

    python bench/dlgsanet_share.py --lib build/lib/kernels/libsparsescope_kernels.so --dlgsanet CHECKOUT [--out FILE]
"""
import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "fixtures"))
from dlgsanet_official import build, load_official  # noqa: E402


def copy_bandwidth():
    """Bytes per millisecond of a device-to-device copy of 1 GiB (read + write), the median of 10."""
    a = torch.empty(1 << 28, device="cuda")
    b = torch.empty_like(a)
    times = []
    for _ in range(12):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        b.copy_(a)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return 2 * a.numel() * a.element_size() / statistics.median(times[2:])


def measure(arch, model, inputs, reps=10):
    """Median over `reps` forwards of (whole forward ms, core ms summed over its calls, core bytes)."""
    original = arch.SparseAttention._forward
    calls = []

    def timed_core(self, qkv):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = original(self, qkv)
        end.record()
        # q, k, v read once and the output written once: what a fused core cannot avoid.
        calls.append((start, end, qkv.numel() * qkv.element_size() * 4 // 3))
        return out
    arch.SparseAttention._forward = timed_core
    whole, core = [], []
    try:
        for i in range(reps + 3):
            calls.clear()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(inputs)
            end.record()
            torch.cuda.synchronize()
            if i >= 3:
                whole.append(start.elapsed_time(end))
                core.append(sum(s.elapsed_time(e) for s, e, _ in calls))
        nbytes = sum(n for _, _, n in calls)
    finally:
        arch.SparseAttention._forward = original
    return statistics.median(whole), statistics.median(core), nbytes


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lib", required=True, help="libsparsescope_kernels.so (the fused dynamic convolution)")
    p.add_argument("--dlgsanet", required=True, type=Path, help="a checkout of NeonLeexiang/DLGSANet")
    p.add_argument("--out")
    args = p.parse_args()
    torch.ops.load_library(args.lib)
    arch = load_official(args.dlgsanet)
    fused = torch.ops.sparsescope.dynamic_depthwise_conv
    swap = lambda x, weight, **_: fused(x, weight.to(x.dtype))  # noqa: E731 (autocast mixes the two)
    arch._idynamic_cuda = sys.modules["basicsr.archs.dlgsanet_idynamicdwconv_util"]._idynamic_cuda = swap
    bandwidth = copy_bandwidth()
    rows = ["| model | pass | input | dtype | forward (ms) | attention core (ms) | core share | "
            "core at copy bandwidth (ms) | most a fused core saves |",
            "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for config in ("light", "large"):
        for mode, (b, size) in (("inference (TLC)", (1, 256)), ("inference (TLC)", (1, 512)),
                                ("training forward", (16, 48))):
            for dtype in (torch.float32, torch.bfloat16):
                torch.manual_seed(0)
                model = build(arch, config, 4).cuda()
                model.train(mode.startswith("training"))
                x = torch.rand(b, 3, size, size, device="cuda")
                # bfloat16 by autocast: the official TLC makes float32 buffers, so the model stays float32.
                with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=dtype == torch.bfloat16):
                    whole, core, nbytes = measure(arch, model, x)
                bound = nbytes / bandwidth
                rows.append(f"| {config} x4 | {mode} | {b} x {size}^2 | {str(dtype)[6:]} | {whole:.2f} | {core:.2f} | "
                            f"{100 * core / whole:.1f}% | {bound:.3f} | {100 * (core - bound) / whole:.1f}% |")
                del model, x
                torch.cuda.empty_cache()
    report = "\n".join([f"# SparseGSA's attention core within DLGSANet ({torch.cuda.get_device_name(0)}, torch "
                        f"{torch.__version__}, copy bandwidth {bandwidth / 1e6:.0f} GB/s)", "", *rows, ""])
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
