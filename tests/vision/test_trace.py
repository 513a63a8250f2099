"""Traces from Python: `sparsescope infer --record` writes one, the safetensors package reads it, and
its attention maps match a forward pass of the same weights written here in plain torch; a trace
written from Python is read by `sparsescope trace info`.

Run by CTest as: python test_trace.py path/to/sparsescope FIXTURES_DIR SAMPLES_DIR
Exits 77 (CTest: skipped) when torch or safetensors is not installed.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

try:
    import torch
    import torch.nn.functional as F
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
except ImportError as missing:
    print(f"skipped: {missing}")
    sys.exit(77)

CLI, FIXTURES, SAMPLES = sys.argv[1:4]
del sys.argv[1:4]
WEIGHTS = os.path.join(FIXTURES, "vit", "vit_tiny_patch16_224.fp16.safetensors")
EXPECTED = os.path.join(FIXTURES, "vit", "vit_tiny_patch16_224.chelsea.expected.safetensors")
DEPTH, HEADS, DIM, PATCH = 12, 3, 192, 16


def vit_attention(weights, x):
    """timm's VisionTransformer (pre-norm blocks, class token) up to every block's attention
    probabilities, from the state dict: [B, H, N, N] per block."""
    w = {k: v.float() for k, v in weights.items()}
    B = x.shape[0]
    t = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=PATCH)
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat([w["cls_token"].expand(B, -1, -1), t], 1) + w["pos_embed"]
    N = t.shape[1]
    probs = []
    for i in range(DEPTH):
        p = f"blocks.{i}."
        h = F.layer_norm(t, (DIM,), w[p + "norm1.weight"], w[p + "norm1.bias"], eps=1e-6)
        qkv = F.linear(h, w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"])
        q, k, v = qkv.reshape(B, N, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1) * (DIM // HEADS) ** -0.5).softmax(-1)
        probs.append(a)
        t = t + F.linear((a @ v).transpose(1, 2).reshape(B, N, DIM), w[p + "attn.proj.weight"],
                         w[p + "attn.proj.bias"])
        h = F.layer_norm(t, (DIM,), w[p + "norm2.weight"], w[p + "norm2.bias"], eps=1e-6)
        h = F.linear(F.gelu(F.linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])),
                     w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
        t = t + h
    return probs


class RecordedByTheCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        run = subprocess.run([CLI, "infer", "--model", "vit_tiny_patch16_224", "--weights", WEIGHTS, "--input",
                              os.path.join(SAMPLES, "chelsea.png"), "--out", cls.tmp.name, "--record"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"sparsescope infer failed ({run.returncode}): {run.stderr}")
        cls.path = os.path.join(cls.tmp.name, "traces", "chelsea.png.trace.safetensors")
        with safe_open(cls.path, "pt") as f:
            cls.meta = json.loads(f.metadata()["sparsescope"])
        cls.tensors = load_file(cls.path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_metadata_describes_every_tensor(self):
        m = self.meta
        self.assertEqual(m["format_version"], 2)
        self.assertEqual(m["model"], "vit_tiny_patch16_224")
        self.assertEqual(m["method"], "dense")
        self.assertTrue(m["input"].endswith("chelsea.png"))
        self.assertEqual(m["frame"], -1)
        self.assertEqual(m["layout"]["kind"], "grid")
        self.assertEqual(m["layout"]["prefix"], 1)
        self.assertEqual(m["layout"]["grid"], [1, 14, 14])
        self.assertEqual(m["stats_columns"], ["recall", "density", "entropy"])
        self.assertEqual(set(m["versions"]), {"sparsescope", "libtorch"})
        self.assertEqual([s["name"] for s in m["sites"]], [f"blocks.{i}.attn" for i in range(DEPTH)])
        names = {"input/image"}
        for s in m["sites"]:
            self.assertEqual((s["pattern"], s["queries"], s["keys"], s["pool"], s["heads"], s["rows"]),
                             ("dense", 197, 197, 1, HEADS, 0))
            self.assertEqual((s["kind"], s["parts"]), ("attention", []))
            names |= {s["name"] + "/" + field for field in ("probs", "mask", "stats", "rows", "row_queries")}
        self.assertEqual(set(self.tensors), names)

    def test_tensors_have_the_documented_dtypes_and_shapes(self):
        t = self.tensors
        self.assertEqual((t["input/image"].dtype, tuple(t["input/image"].shape)), (torch.uint8, (224, 224, 3)))
        site = "blocks.0.attn/"
        self.assertEqual((t[site + "probs"].dtype, tuple(t[site + "probs"].shape)), (torch.float16, (HEADS, 197, 197)))
        self.assertEqual((t[site + "mask"].dtype, tuple(t[site + "mask"].shape)), (torch.uint8, (1, 197, 197)))
        self.assertTrue(bool((t[site + "mask"] == 255).all()), "dense attention keeps every key")
        self.assertEqual(tuple(t[site + "stats"].shape), (HEADS, 3))
        self.assertEqual(tuple(t[site + "rows"].shape), (HEADS, 0, 197))
        self.assertEqual(t[site + "row_queries"].dtype, torch.int64)

    def test_probabilities_match_a_plain_torch_forward(self):
        # timm's preprocessing of the same photo (our own matches it to ~1e-3), the same weights.
        x = load_file(EXPECTED)["input"]
        want = vit_attention(load_file(WEIGHTS), x)
        for i in range(DEPTH):
            got = self.tensors[f"blocks.{i}.attn/probs"].float()
            # Stored as float16: within its relative precision (random-init weights attend almost
            # uniformly, so an absolute tolerance alone would prove little).
            torch.testing.assert_close(got, want[i][0], atol=1e-5, rtol=1e-3, msg=f"blocks.{i}.attn")
            torch.testing.assert_close(got.sum(-1), torch.ones(HEADS, 197), atol=2e-3, rtol=0)

    def test_statistics_follow_from_the_maps(self):
        for i in range(DEPTH):
            p = self.tensors[f"blocks.{i}.attn/probs"].double()
            stats = self.tensors[f"blocks.{i}.attn/stats"].double()
            entropy = -(torch.special.xlogy(p, p)).sum(-1).mean(-1)
            torch.testing.assert_close(stats[:, 2], entropy, atol=1e-3, rtol=0)
            torch.testing.assert_close(stats[:, :2], torch.ones(HEADS, 2, dtype=torch.double), atol=1e-5, rtol=0)

    def test_image_is_the_network_input(self):
        x = load_file(EXPECTED)["input"][0]  # normalised with timm's inception mean/std 0.5
        pixels = ((x * 0.5 + 0.5) * 255).permute(1, 2, 0)
        diff = (self.tensors["input/image"].float() - pixels).abs().max().item()
        self.assertLessEqual(diff, 2.0)


class WrittenFromPython(unittest.TestCase):
    def test_cli_reads_a_trace_written_with_safetensors(self):
        probs = torch.softmax(torch.randn(2, 5, 5), -1)
        meta = {"format_version": 1, "model": "toy", "method": "topk", "input": "x.png", "frame": -1,
                "producer": "python", "pooling": "mean", "stats_columns": ["recall", "density", "entropy"],
                "layout": {"prefix": 1, "grid": [1, 2, 2], "segments": []},
                "sites": [{"name": "enc.attn", "pattern": "topk", "queries": 5, "keys": 5, "pool": 1, "heads": 2,
                           "mask_heads": 1, "rows": 0}]}
        tensors = {"enc.attn/probs": probs.half(), "enc.attn/mask": torch.full((1, 5, 5), 255, dtype=torch.uint8),
                   "enc.attn/stats": torch.tensor([[0.5, 1.0, 1.2], [0.25, 1.0, 1.4]]),
                   "enc.attn/rows": torch.zeros(2, 0, 5), "enc.attn/row_queries": torch.zeros(0, dtype=torch.int64)}
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "py.safetensors")
            save_file(tensors, path, metadata={"sparsescope": json.dumps(meta)})
            run = subprocess.run([CLI, "trace", "info", path, "--json"], capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
            info = json.loads(run.stdout)[0]
            self.assertEqual(info["model"], "toy")
            self.assertEqual(info["sites"][0]["name"], "enc.attn")
            self.assertTrue(math.isclose(info["sites"][0]["heads"][1]["recall"], 0.25, rel_tol=1e-6))
            # One tensor off its declared shape: refused with one line naming it, exit status 1.
            tensors["enc.attn/stats"] = torch.zeros(3, 3)
            save_file(tensors, path, metadata={"sparsescope": json.dumps(meta)})
            run = subprocess.run([CLI, "trace", "info", path], capture_output=True, text=True)
            self.assertEqual(run.returncode, 1)
            self.assertEqual(run.stderr.count("\n"), 1, run.stderr)
            self.assertIn("enc.attn/stats", run.stderr)


if __name__ == "__main__":
    unittest.main()
