"""Block-sparse, dense, dense-with-bias, top-k and neighborhood attention forward: sparsescope's fused kernels
against FlexAttention (torch.compile'd, on the same BlockMask tensors, or a score_mod reading the
same bias) and SDPA (flash backend; with a bias, the backend SDPA picks), all timed in this process
with CUDA events (median of --reps after --warmup). Prints a Markdown report.

    python bench/attention.py --lib build/lib/kernels/libsparsescope_kernels.so [--out FILE]

Block masks: 128 x 128 blocks, random at a given density with the diagonal kept, plus a
sliding-window + global-blocks mask. Both implementations get the mask as FlexAttention's
BlockMask tensors with every listed block full (FlexAttention's fastest path: no mask_mod is
evaluated), made by sparsescope's own from_block_mask from the dense block mask. TFLOP/s count only the computed
blocks (4 * D flops per query-key pair). Neighborhood rows (NATTEN's non-causal windows on a 2D or
3D grid of row-major tokens) give FlexAttention the same rule as a mask_mod (create_block_mask over
it, 128 x 128 blocks); their TFLOP/s count the visible pairs. Nothing here asserts a timing.
"""
import argparse
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

BLOCK = 128


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lib", required=True, help="path of libsparsescope_kernels.so")
    p.add_argument("--out", help="also write the report here")
    p.add_argument("--device", default="cuda")
    p.add_argument("--seq", default="4096,16384,65536", help="N values (N = M)")
    p.add_argument("--dims", default="64,128")
    p.add_argument("--densities", default="100,50,20,10,5")
    p.add_argument("--topk", default="32,64,128")
    p.add_argument("--topk-seq", default="4096,16384")
    p.add_argument("--neighborhoods", default="64x64:7x7,64x64:13x13,128x128:13x13,16x32x32:7x7x7",
                   help="GRID:KERNEL, comma-separated, e.g. 64x64:7x7 (2D) or 16x32x32:7x7x7 (3D)")
    p.add_argument("--permuted-seq", default="16384,65536", help="N values of the Permuted rows (10%% of blocks)")
    p.add_argument("--backward-seq", default="4096,16384", help="N values of the forward + backward rows")
    p.add_argument("--bias-seq", default="2048,4096,8192", help="N values of the additive-bias rows")
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-compile", action="store_true", help="eager FlexAttention (CPU smoke runs)")
    return p.parse_args()


class Timer:
    def __init__(self, device, reps, warmup):
        self.device, self.reps, self.warmup = device, reps, warmup

    def __call__(self, fn):
        """Median milliseconds of fn(); fewer repetitions for long calls."""
        for _ in range(self.warmup):
            fn()
        if self.device == "cuda":
            torch.cuda.synchronize()
        times = []
        for _ in range(self.reps):
            if self.device == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1e3)
            if sum(times) > 3000 and len(times) >= 3:
                break
        return statistics.median(times)


def ints(text):
    """The comma-separated integers of a flag; an empty flag skips its rows."""
    return [int(x) for x in text.split(",") if x]


def matmul_peak(timer, device):
    if device != "cuda":
        return float("nan")
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    ms = timer(lambda: a @ b)
    return 2 * n**3 / ms / 1e9


def random_blocks(heads, nb, density, gen, device):
    """[1, H, nb, nb] bool, about `density` of the blocks, the diagonal always kept."""
    blocks = torch.rand(1, heads, nb, nb, generator=gen, device="cpu") < density
    blocks |= torch.eye(nb, dtype=torch.bool)
    return blocks.to(device)


def sliding_global(heads, nb, window, globals_, device):
    """Blocks within `window` of the diagonal, plus `globals_` global block rows and columns."""
    i = torch.arange(nb).view(nb, 1)
    j = torch.arange(nb).view(1, nb)
    blocks = ((i - j).abs() <= window) | (i < globals_) | (j < globals_)
    return blocks.view(1, 1, nb, nb).expand(1, heads, nb, nb).contiguous().to(device)


def tflops(pairs, d, ms):
    return 4 * d * pairs / ms / 1e9


class Bench:
    def __init__(self, args):
        self.args = args
        self.device = args.device
        self.ops = torch.ops.sparsescope
        self.timer = Timer(args.device, args.reps, args.warmup)
        self.flex = flex_attention if args.no_compile else torch.compile(flex_attention, dynamic=False)
        self.lines = []

    def progress(self, row):
        """Prints a finished row to stderr at once; the report gathers them into tables."""
        print(row, file=sys.stderr, flush=True)
        return row

    def say(self, line=""):
        print(line, flush=True)
        self.lines.append(line)

    def qkv(self, n, d, gen):
        shape = (1, self.args.heads, n, d)
        return [torch.randn(shape, generator=gen, device="cpu", dtype=torch.bfloat16).to(self.device)
                for _ in range(3)]

    def sdpa(self, q, k, v, causal=False):
        if self.device == "cuda":
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    def both_kernels(self, ours, anchor):
        """ours() on the mma.sync kernels and with the Hopper forward asked for (SPARSESCOPE_WGMMA=1;
        the same kernels off sm_90): (ms, ms, max abs difference of either against anchor())."""
        times, err = [], 0.0
        for flag in ("0", "1"):
            os.environ["SPARSESCOPE_WGMMA"] = flag
            times.append(self.timer(ours))
            err = max(err, (ours().float() - anchor().float()).abs().max().item())
        del os.environ["SPARSESCOPE_WGMMA"]
        return times[0], times[1], err

    def dense_rows(self, n, d, q, k, v):
        rows = []
        for causal in (False, True):
            ours = lambda: self.ops.dense_attention(q, k, v, causal)[0]
            t_sdpa = self.timer(lambda: self.sdpa(q, k, v, causal))
            t_mma, t_wgmma, err = self.both_kernels(ours, lambda: self.sdpa(q, k, v, causal))
            pairs = self.args.heads * (n * (n + 1) // 2 if causal else n * n)
            rows.append(self.progress(f"| {n} | {d} | {'causal' if causal else 'full'} | {t_mma:.3f} | {t_wgmma:.3f} | "
                        f"{t_sdpa:.3f} | {t_sdpa / t_mma:.2f}x | **{t_sdpa / t_wgmma:.2f}x** | "
                        f"{tflops(pairs, d, t_wgmma):.0f} | {tflops(pairs, d, t_sdpa):.0f} | {err:.1e} |"))
        return rows

    def block_sparse_rows(self, n, d, q, k, v, t_sdpa, gen):
        heads, nb = self.args.heads, n // BLOCK
        masks = [(f"random {p}%", random_blocks(heads, nb, p / 100, gen, self.device))
                 for p in map(int, self.args.densities.split(","))]
        window = max(1, nb // 32)
        masks.append((f"window {2 * window + 1} + global 1", sliding_global(heads, nb, window, 1, self.device)))
        rows = []
        for name, blocks in masks:
            count, index, none_count, none_index, bm = self.block_mask(blocks, n)
            ours = lambda: self.ops.block_sparse_attention(q, k, v, none_count, none_index, BLOCK, BLOCK,
                                                           count, index)[0]
            flex = lambda: self.flex(q, k, v, block_mask=bm)
            t_flex = self.timer(flex)
            t_mma, t_wgmma, err = self.both_kernels(ours, flex)
            pairs = int(count.sum().item()) * BLOCK * BLOCK
            density = pairs / (heads * n * n)
            rows.append(self.progress(f"| {n} | {d} | {name} | {100 * density:.1f}% | {t_mma:.3f} | {t_wgmma:.3f} | "
                        f"{t_flex:.3f} | {t_sdpa:.3f} | {t_flex / t_mma:.2f}x | **{t_flex / t_wgmma:.2f}x** | "
                        f"{t_sdpa / t_wgmma:.2f}x | {tflops(pairs, d, t_wgmma):.0f} | {tflops(pairs, d, t_flex):.0f} | "
                        f"{err:.1e} |"))
            del bm
        return rows

    def block_mask(self, blocks, n):
        """Dense block masks [1, H, N / BLOCK, N / BLOCK] as full blocks in FlexAttention's layout:
        (count, index, partial count, partial index, BlockMask), the partial lists empty."""
        count, index = self.ops.from_block_mask(blocks)
        # No partial blocks. kv_indices keeps the full width: FlexAttention's kernels take the
        # number of key blocks from it (a width-1 tensor made compiled FlexAttention read the
        # full-block lists wrongly on the GPU, and inductor's CPU lowering refuses it).
        none_count, none_index = torch.zeros_like(count), torch.zeros_like(index)

        # The mask_mod states the same mask (FlexAttention's source of truth, which its eager
        # path applies); with every listed block full, compiled kernels never evaluate it.
        def mask_mod(b, h, q_idx, kv_idx):
            return blocks[b, h, q_idx // BLOCK, kv_idx // BLOCK]

        bm = BlockMask.from_kv_blocks(none_count, none_index, count, index, BLOCK_SIZE=BLOCK,
                                      mask_mod=mask_mod, seq_lengths=(n, n))
        return count, index, none_count, none_index, bm

    def topk_rows(self, n, d, q, k, v, gen):
        rows = []
        heads = self.args.heads
        for kk in map(int, self.args.topk.split(",")):
            # Distinct keys per query: a random start and kk keys spread over the sequence.
            start = torch.randint(0, n, (1, heads, n, 1), generator=gen).to(self.device)
            index = (start + torch.arange(kk, device=self.device) * (n // kk)) % n
            ours = lambda: self.ops.topk_attention(q, k, v, index)[0]
            scale = d ** -0.5

            def gathered():
                # Gather the listed keys and values: [1, H, N, K, D], then two batched products.
                flat = index.reshape(1, heads, n * kk, 1).expand(1, heads, n * kk, d)
                kg = k.gather(2, flat).view(1, heads, n, kk, d)
                vg = v.gather(2, flat).view(1, heads, n, kk, d)
                s = torch.einsum("bhnd,bhnkd->bhnk", q, kg).float() * scale
                return torch.einsum("bhnk,bhnkd->bhnd", s.softmax(-1).to(q.dtype), vg)

            def masked_sdpa():
                keep = torch.zeros(1, heads, n, n, dtype=torch.bool, device=self.device)
                keep.scatter_(-1, index, True)
                return F.scaled_dot_product_attention(q, k, v, attn_mask=keep)

            t_ours = self.timer(ours)
            want = gathered()
            err = (ours().float() - want.float()).abs().max().item()
            candidates = {"gather + einsum": self.timer(gathered)}
            if n <= 16384:
                candidates["SDPA + bool mask"] = self.timer(masked_sdpa)
            best = min(candidates, key=candidates.get)
            t_best = candidates[best]
            pairs = heads * n * kk
            rows.append(self.progress(f"| {n} | {d} | {kk} | {t_ours:.3f} | {t_best:.3f} ({best}) | "
                        f"**{t_best / t_ours:.2f}x** | {tflops(pairs, d, t_ours):.1f} | "
                        f"{pairs * 2 * d * 2 / t_ours / 1e6:.0f} | {err:.1e} |"))
        return rows

    def neighborhood_rows(self, grid, kernel, d, q, k, v):
        """NATTEN's non-causal window, dilation 1: along an axis of length L a query at i sees the
        kernel K coordinates from clamp(i - K // 2, 0, L - K) (sparsescope's mask::neighborhood_window)."""
        strides = [math.prod(grid[a + 1:]) for a in range(len(grid))]

        def mask_mod(b, h, q_idx, kv_idx):
            keep = None
            for length, size, stride in zip(grid, kernel, strides):
                qi, ki = (q_idx // stride) % length, (kv_idx // stride) % length
                start = torch.clamp(qi - size // 2, min=0, max=length - size)
                inside = (ki >= start) & (ki < start + size)
                keep = inside if keep is None else keep & inside
            return keep

        n = math.prod(grid)
        bm = create_block_mask(mask_mod, None, None, n, n, device=self.device, BLOCK_SIZE=BLOCK)
        ours = lambda: self.ops.neighborhood_attention(q, k, v, list(grid), list(kernel))[0]
        flex = lambda: self.flex(q, k, v, block_mask=bm)
        t_flex = self.timer(flex)
        t_mma, t_wgmma, err = self.both_kernels(ours, flex)
        pairs = self.args.heads * n * math.prod(kernel)
        name = "x".join(map(str, grid)) + " : " + "x".join(map(str, kernel))
        return [self.progress(f"| {name} | {n} | {d} | {t_mma:.3f} | {t_wgmma:.3f} | {t_flex:.3f} | {t_flex / t_mma:.2f}x | "
                              f"**{t_flex / t_wgmma:.2f}x** | {tflops(pairs, d, t_wgmma):.1f} | {tflops(pairs, d, t_flex):.1f} | "
                              f"{err:.1e} |")]

    def permuted_rows(self, n, d, q, k, v, gen):
        """Permuted over BlockSparse (MMInference's permuted prefill): a random token permutation per
        head and 10% of the 128 x 128 blocks of the permuted problem. Ours fuses the permutation into
        the kernel's loads and stores; torch gathers q, k, v, runs FlexAttention on the same BlockMask
        and scatters the output back. Our block-sparse kernel on already permuted inputs is the bound."""
        heads, nb = self.args.heads, n // BLOCK
        perm = torch.rand((1, heads, n), generator=gen).argsort(-1).to(self.device)
        inverse = perm.argsort(-1)
        count, index, none_count, none_index, bm = self.block_mask(random_blocks(heads, nb, 0.1, gen, self.device), n)
        rows = perm.unsqueeze(-1).expand(1, heads, n, d)
        ours = lambda: self.ops.permuted_block_sparse_attention(q, k, v, perm, inverse, none_count, none_index,
                                                                BLOCK, BLOCK, count, index)[0]

        def torch_side():
            out = self.flex(q.gather(2, rows), k.gather(2, rows), v.gather(2, rows), block_mask=bm)
            return torch.empty_like(out).scatter_(2, rows, out)

        qp, kp, vp = q.gather(2, rows), k.gather(2, rows), v.gather(2, rows)
        bound = lambda: self.ops.block_sparse_attention(qp, kp, vp, none_count, none_index, BLOCK, BLOCK,
                                                        count, index)[0]
        t_ours, t_torch, t_bound = self.timer(ours), self.timer(torch_side), self.timer(bound)
        err = (ours().float() - torch_side().float()).abs().max().item()
        pairs = int(count.sum().item()) * BLOCK * BLOCK
        del bm
        return [self.progress(f"| {n} | {d} | {t_ours:.3f} | {t_torch:.3f} | {t_bound:.3f} | **{t_torch / t_ours:.2f}x** | "
                              f"{t_bound / t_ours:.2f} | {tflops(pairs, d, t_ours):.0f} | {err:.1e} |")]

    def backward_rows(self, n, d, q, k, v, gen):
        """Forward + backward (dq, dk, dv from a random dout): ours (the fused backward from the saved
        LSE) vs SDPA-flash for Dense, vs FlexAttention for BlockSparse (10% of 128 x 128 blocks)."""
        heads, nb = self.args.heads, n // BLOCK
        dout = torch.randn(q.shape, generator=gen).to(self.device, q.dtype)
        leaves = [t.detach().requires_grad_(True) for t in (q, k, v)]

        def train_step(attention, deterministic=False):
            def run():
                for t in leaves:
                    t.grad = None
                torch.use_deterministic_algorithms(deterministic)  # read by our backward
                try:
                    attention(*leaves).backward(dout)
                finally:
                    torch.use_deterministic_algorithms(False)
                return [t.grad for t in leaves]
            return run

        count, index, none_count, none_index, bm = self.block_mask(random_blocks(heads, nb, 0.1, gen, self.device), n)
        dense = lambda a, b, c: self.ops.dense_attention(a, b, c, False)[0]
        cases = [
            ("dense", self.args.heads * n * n, dense, lambda a, b, c: self.sdpa(a, b, c), "sdpa"),
            # dQ by a pass per query tile instead of atomics (torch.use_deterministic_algorithms)
            ("dense, deterministic", self.args.heads * n * n, (dense, True), lambda a, b, c: self.sdpa(a, b, c), "sdpa"),
            ("dense causal", self.args.heads * n * (n + 1) // 2,
             lambda a, b, c: self.ops.dense_attention(a, b, c, True)[0], lambda a, b, c: self.sdpa(a, b, c, True), "sdpa"),
            ("block-sparse 10%", int(count.sum().item()) * BLOCK * BLOCK,
             lambda a, b, c: self.ops.block_sparse_attention(a, b, c, none_count, none_index, BLOCK, BLOCK, count, index)[0],
             lambda a, b, c: self.flex(a, b, c, block_mask=bm), "flex"),
        ]
        if self.device != "cuda":
            cases.pop()  # FlexAttention has no backward on the CPU
        rows = []
        for name, pairs, ours, anchor, anchor_name in cases:
            ours, deterministic = ours if isinstance(ours, tuple) else (ours, False)
            t_ours, t_anchor = self.timer(train_step(ours, deterministic)), self.timer(train_step(anchor))
            got = [g.float() for g in train_step(ours, deterministic)()]
            want = [g.float() for g in train_step(anchor)()]
            err = max((x - y).abs().max().item() for x, y in zip(got, want))
            # forward + backward is 2 + 5 matmul-sized products (flash-attention's count: 3.5x the forward)
            rows.append(self.progress(f"| {n} | {d} | {name} | {t_ours:.3f} | {t_anchor:.3f} ({anchor_name}) | "
                                      f"**{t_anchor / t_ours:.2f}x** | {3.5 * tflops(pairs, d, t_ours):.0f} | {err:.1e} |"))
        del bm
        return rows

    def bias_rows(self, n, d, q, k, v, gen):
        """An additive bias [1, H, N, N] of the query dtype (a learnable soft mask, SwinBERT-style) with
        a fifth of the keys dropped (-inf): ours reads it per score in the fused forward."""
        heads = self.args.heads
        bias = torch.randn((1, heads, n, n), generator=gen).to(self.device, torch.bfloat16)
        bias.masked_fill_(torch.rand((1, heads, n, n), generator=gen).to(self.device) < 0.2, float("-inf"))
        ours = lambda: self.ops.dense_attention(q, k, v, False, None, bias)[0]
        sdpa = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        flex = lambda: self.flex(q, k, v, score_mod=lambda score, b, h, qi, ki: score + bias[b, h, qi, ki])
        t_ours, t_sdpa, t_flex = self.timer(ours), self.timer(sdpa), self.timer(flex)
        err = (ours().float() - sdpa().float()).abs().max().item()
        pairs = heads * n * n
        return [self.progress(f"| {n} | {d} | {t_ours:.3f} | {t_sdpa:.3f} | {t_flex:.3f} | {t_sdpa / t_ours:.2f}x | "
                              f"{t_flex / t_ours:.2f}x | {tflops(pairs, d, t_ours):.0f} | "
                              f"{pairs * 2 / t_ours / 1e6:.0f} | {err:.1e} |")]

    def table(self, title, columns, rows):
        """A markdown section: the title, a table of `columns` and the finished rows."""
        if self.lines[-1] != "":
            self.say()
        self.say(title)
        self.say()
        self.say("| " + " | ".join(columns) + " |")
        self.say("|" + "---|" * len(columns))
        for r in rows:
            self.say(r)

    def sweep(self, seqs, rows, gen):
        """rows(n, d, q, k, v, gen) for every N in `seqs` (comma-separated) and every head dim."""
        out = []
        for n in ints(seqs):
            for d in ints(self.args.dims):
                q, k, v = self.qkv(n, d, gen)
                out += rows(n, d, q, k, v, gen)
                del q, k, v
                if self.device == "cuda":
                    torch.cuda.empty_cache()
        return out

    def run(self):
        args = self.args
        gen = torch.Generator().manual_seed(0)
        props = torch.cuda.get_device_properties(0) if self.device == "cuda" else None
        self.say("# Attention forward benchmark")
        self.say()
        self.say(f"`python bench/attention.py {' '.join(sys.argv[1:])}`")
        self.say()
        self.say(f"- device: {props.name if props else 'cpu'}; torch {torch.__version__}; bf16, B = 1, "
                 f"H = {args.heads}, N = M; median of up to {args.reps} CUDA-event timings after {args.warmup} warm-ups")
        peak = matmul_peak(self.timer, self.device)
        self.say(f"- measured bf16 matmul peak (8192^3, torch.matmul): **{peak:.0f} TFLOP/s**")
        self.say()
        dense, sparse = [], []
        for n in ints(args.seq):
            for d in ints(args.dims):
                q, k, v = self.qkv(n, d, gen)
                dense += self.dense_rows(n, d, q, k, v)
                t_sdpa = self.timer(lambda: self.sdpa(q, k, v))
                sparse += self.block_sparse_rows(n, d, q, k, v, t_sdpa, gen)
                del q, k, v
                if self.device == "cuda":
                    torch.cuda.empty_cache()
        topk = self.sweep(args.topk_seq, self.topk_rows, gen)
        neighborhood = []
        for spec in filter(None, args.neighborhoods.split(",")):
            grid, kernel = (tuple(map(int, part.split("x"))) for part in spec.split(":"))
            for d in ints(args.dims):
                q, k, v = self.qkv(math.prod(grid), d, gen)
                neighborhood += self.neighborhood_rows(grid, kernel, d, q, k, v)
                del q, k, v
        backward = self.sweep(args.backward_seq, self.backward_rows, gen)
        permuted = self.sweep(args.permuted_seq, self.permuted_rows, gen)
        bias = self.sweep(args.bias_seq, self.bias_rows, gen)
        self.table("## Block-sparse (128 x 128 blocks): sparsescope (mma.sync; wgmma: SPARSESCOPE_WGMMA=1) vs FlexAttention and dense SDPA-flash",
                   ['N', 'D', 'mask', 'density', 'mma.sync ms', 'wgmma ms', 'flex ms', 'sdpa ms', 'mma.sync vs flex', 'wgmma vs flex',
                    'wgmma vs sdpa', 'wgmma TFLOP/s', 'flex TFLOP/s', 'max abs diff vs flex'],
                   sparse)
        self.table("## Dense: sparsescope (mma.sync; wgmma: SPARSESCOPE_WGMMA=1) vs SDPA flash backend",
                   ['N', 'D', 'mask', 'mma.sync ms', 'wgmma ms', 'sdpa ms', 'mma.sync vs sdpa', 'wgmma vs sdpa', 'wgmma TFLOP/s',
                    'sdpa TFLOP/s', 'max abs diff'],
                   dense)
        self.table("## TopK (distinct keys per query): sparsescope vs the fastest torch formulation",
                   ['N', 'D', 'k', 'ours ms', 'best torch ms', 'vs torch', 'ours TFLOP/s', 'ours GB/s (K, V rows read)', 'max abs diff'],
                   topk)
        self.table("## Neighborhood (NATTEN windows on row-major tokens): sparsescope (mma.sync; wgmma: SPARSESCOPE_WGMMA=1) vs FlexAttention with the same mask_mod",
                   ['grid : kernel', 'N', 'D', 'mma.sync ms', 'wgmma ms', 'flex ms', 'mma.sync vs flex', 'wgmma vs flex',
                    'wgmma TFLOP/s', 'flex TFLOP/s', 'max abs diff vs flex'],
                   neighborhood)
        self.table("## Forward + backward (dq, dk, dv): sparsescope's fused backward vs SDPA-flash and FlexAttention",
                   ['N', 'D', 'pattern', 'ours ms', 'anchor ms', 'vs anchor', 'ours TFLOP/s', 'max abs diff of the gradients'],
                   backward)
        self.table("## Permuted block-sparse (a random permutation per head, 10% of 128 x 128 blocks): fused vs gather + FlexAttention + scatter",
                   ['N', 'D', 'ours ms', 'torch ms', 'unpermuted ours ms', 'vs torch', 'unpermuted / ours', 'ours TFLOP/s', 'max abs diff vs torch'],
                   permuted)
        self.table("## Dense with an additive bias [1, H, N, N] (bf16, 20% of it -inf): sparsescope vs SDPA and FlexAttention",
                   ['N', 'D', 'ours ms', 'sdpa ms', 'flex ms', 'vs sdpa', 'vs flex', 'ours TFLOP/s', 'ours bias GB/s', 'max abs diff vs sdpa'],
                   bias)
        if args.out:
            with open(args.out, "w") as f:
                f.write("\n".join(self.lines) + "\n")


def main():
    args = parse()
    # Each shape and BlockMask is a new compilation of flex_attention; past dynamo's default limit
    # of 8 it would silently run eager (materialising the scores).
    torch._dynamo.config.recompile_limit = 1024
    torch.ops.load_library(args.lib)
    Bench(args).run()


if __name__ == "__main__":
    main()
