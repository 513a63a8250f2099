"""torch.ops.sparsescope.* from Python, against torch's SDPA and FlexAttention (eager) on CPU.

Run by CTest as: python test_ops.py path/to/libsparsescope_kernels.so
"""
import sys
import unittest
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import AuxRequest, create_block_mask, flex_attention

LIBRARY = sys.argv.pop(1)
torch.ops.load_library(LIBRARY)
ops = torch.ops.sparsescope


def masked_reference(q, k, v, keep, scale):
    """Dense attention in float64 over a keep mask; rows without keys give 0 and -inf."""
    s = (q.double() @ k.double().transpose(-1, -2)) * scale
    s = s.masked_fill(~keep, float("-inf"))
    lse = torch.logsumexp(s, -1)
    p = torch.exp(s - lse.unsqueeze(-1)).nan_to_num(0.0)
    return p @ v.double(), lse


class DenseAgainstSdpa(unittest.TestCase):
    def test_mask_causal_and_scale(self):
        torch.manual_seed(0)
        q, k, v = torch.randn(2, 3, 17, 16), torch.randn(2, 3, 23, 16), torch.randn(2, 3, 23, 8)
        mask = torch.rand(1, 3, 17, 23) < 0.6
        mask[..., 0] = True  # SDPA has no convention for rows without keys
        out, lse = ops.dense_attention(q, k, v, mask=mask, scale=0.3)
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
        torch.testing.assert_close(out, want, atol=2e-5, rtol=1e-5)
        s = (q @ k.transpose(-1, -2) * 0.3).masked_fill(~mask, float("-inf"))
        torch.testing.assert_close(lse, torch.logsumexp(s, -1), atol=2e-5, rtol=1e-5)
        for n, m in ((17, 23), (23, 17)):
            out, _ = ops.dense_attention(q[:, :, :n], k[:, :, :m], v[:, :, :m], causal=True)
            want = F.scaled_dot_product_attention(q[:, :, :n], k[:, :, :m], v[:, :, :m], is_causal=True)
            torch.testing.assert_close(out, want, atol=2e-5, rtol=1e-5)

    def test_bfloat16_is_computed_in_float32(self):
        torch.manual_seed(1)
        q, k, v = (torch.randn(1, 2, 9, 32, dtype=torch.bfloat16) for _ in range(3))
        out, lse = ops.dense_attention(q, k, v)
        self.assertEqual(out.dtype, torch.bfloat16)
        self.assertEqual(lse.dtype, torch.float32)
        want = F.scaled_dot_product_attention(q.float(), k.float(), v.float()).bfloat16()
        torch.testing.assert_close(out, want, atol=1.6e-2, rtol=0)


class BlockSparseAgainstFlexAttention(unittest.TestCase):
    def test_block_mask_tensors_are_exchanged_as_they_are(self):
        torch.manual_seed(2)
        B, H, N, M, D, bq, bk = 2, 3, 37, 45, 16, 8, 16
        nq, nk = -(-N // bq), -(-M // bk)
        blocks = torch.rand(B, H, nq, nk) < 0.4
        blocks[:, :, 1] = False  # a query block without keys

        def mask_mod(b, h, q_idx, kv_idx):
            return blocks[b, h, q_idx // bq, kv_idx // bk]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bm = create_block_mask(mask_mod, B, H, N, M, device="cpu", BLOCK_SIZE=(bq, bk))
            q, k, v = torch.randn(B, H, N, D), torch.randn(B, H, M, D), torch.randn(B, H, M, D)
            want, aux = flex_attention(q, k, v, block_mask=bm, return_aux=AuxRequest(lse=True))
        self.assertIsNotNone(bm.full_kv_num_blocks)
        out, lse = ops.block_sparse_attention(q, k, v, bm.kv_num_blocks, bm.kv_indices, bq, bk,
                                              bm.full_kv_num_blocks, bm.full_kv_indices)
        torch.testing.assert_close(out, want, atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(lse, aux.lse, atol=2e-5, rtol=1e-5)
        self.assertTrue(torch.all(out[:, :, bq:2 * bq] == 0))
        self.assertTrue(torch.all(lse[:, :, bq:2 * bq] == float("-inf")))

        union = ops.to_block_mask(bm.kv_num_blocks, bm.kv_indices, nk, bm.full_kv_num_blocks,
                                  bm.full_kv_indices)
        self.assertTrue(torch.equal(union, bm.to_dense().bool()))
        self.assertTrue(torch.equal(union, blocks))
        # Our dense -> ordered conversion gives FlexAttention's own tensors.
        partial = ops.to_block_mask(bm.kv_num_blocks, bm.kv_indices, nk)
        count, index = ops.from_block_mask(partial)
        self.assertTrue(torch.equal(count, bm.kv_num_blocks))
        self.assertTrue(torch.equal(index, bm.kv_indices))


class TopKAndNeighborhood(unittest.TestCase):
    def test_topk_against_a_masked_reference(self):
        torch.manual_seed(3)
        q, k, v = torch.randn(2, 2, 11, 8), torch.randn(2, 2, 13, 8), torch.randn(2, 2, 13, 8)
        index = torch.randint(-1, 13, (2, 2, 11, 4))
        index[0, 1, 3] = -1  # no keys
        keep = torch.zeros(2, 2, 11, 14, dtype=torch.bool)
        keep.scatter_(-1, torch.where(index < 0, 13, index), True)
        keep = keep[..., :13]
        out, lse = ops.topk_attention(q, k, v, index)
        want_out, want_lse = masked_reference(q, k, v, keep, 8 ** -0.5)
        torch.testing.assert_close(out.double(), want_out, atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(lse.double(), want_lse, atol=2e-5, rtol=1e-5)

    def test_neighborhood_2d_against_natten_windows(self):
        torch.manual_seed(4)
        grid, kernel, dilation = (6, 7), (3, 4), (2, 1)

        def window(i, length, k, d):  # NATTEN: window inside the dilation group, shifted inward
            g, p = i % d, i // d
            glen = (length - g + d - 1) // d
            left, right = k // 2, k // 2 + k % 2 - 1
            start = max(p - left, 0) + (glen - right - p - 1 if p + right >= glen else 0)
            return {g + d * s for s in range(start, start + k)}

        n = grid[0] * grid[1]
        keep = torch.zeros(n, n, dtype=torch.bool)
        for i in range(n):
            for j in range(n):
                keep[i, j] = all(c2 in window(c1, L, k, d) for c1, c2, L, k, d in
                                 zip(divmod(i, grid[1]), divmod(j, grid[1]), grid, kernel, dilation))
        q, k, v = (torch.randn(1, 2, n, 8) for _ in range(3))
        out, _ = ops.neighborhood_attention(q, k, v, list(grid), list(kernel), list(dilation))
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=keep),
                                   atol=2e-5, rtol=1e-5)


class Permuted(unittest.TestCase):
    def test_permuted_block_sparse_is_block_sparse_on_gathered_tokens(self):
        torch.manual_seed(6)
        B, H, N, M, D, bq, bk = 2, 2, 24, 20, 8, 8, 4
        perm = torch.rand(B, H, N).argsort(-1)
        kv_perm = torch.rand(1, 1, M).argsort(-1)
        blocks = torch.rand(B, H, N // bq, M // bk) < 0.5
        count, index = ops.from_block_mask(blocks)
        q, k, v = torch.randn(B, H, N, D), torch.randn(B, 1, M, D), torch.randn(B, 1, M, D)
        out, lse = ops.permuted_block_sparse_attention(q, k, v, perm, perm.argsort(-1), count, index, bq, bk,
                                                       kv_perm=kv_perm)
        # Position a of the inner problem is query perm[a] and key kv_perm[a]; its output is row perm[a].
        gather = lambda x, idx: x.expand(B, H, -1, D).gather(2, idx.expand(B, H, -1).unsqueeze(-1).expand(-1, -1, -1, D))
        inner_out, inner_lse = ops.block_sparse_attention(gather(q, perm), gather(k, kv_perm), gather(v, kv_perm),
                                                          count, index, bq, bk)
        want = torch.empty_like(inner_out).scatter_(2, perm.unsqueeze(-1).expand(-1, -1, -1, D), inner_out)
        torch.testing.assert_close(out, want, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(lse, torch.empty_like(inner_lse).scatter_(2, perm, inner_lse), atol=1e-6, rtol=1e-6)


class Autograd(unittest.TestCase):
    def test_gradcheck_in_float64(self):
        torch.manual_seed(5)
        q = torch.randn(1, 2, 5, 3, dtype=torch.double, requires_grad=True)
        k = torch.randn(1, 2, 6, 3, dtype=torch.double, requires_grad=True)
        v = torch.randn(1, 2, 6, 3, dtype=torch.double, requires_grad=True)
        bias = torch.randn(1, 1, 5, 6, dtype=torch.double, requires_grad=True)
        index = torch.randint(-1, 6, (1, 2, 5, 3))
        count = torch.tensor([[[1, 0, 2], [2, 1, 0]]], dtype=torch.int32)
        blocks = torch.tensor([[[[2, 0], [1, 2], [0, 1]], [[0, 1], [2, 2], [1, 0]]]], dtype=torch.int32)
        self.assertTrue(torch.autograd.gradcheck(
            lambda q, k, v, b: ops.dense_attention(q, k, v, True, None, b)[0], (q, k, v, bias)))
        self.assertTrue(torch.autograd.gradcheck(
            lambda q, k, v: ops.topk_attention(q, k, v, index)[0], (q, k, v)))
        self.assertTrue(torch.autograd.gradcheck(
            lambda q, k, v: ops.block_sparse_attention(q, k, v, count, blocks, 2, 2)[0], (q, k, v)))


class Errors(unittest.TestCase):
    def test_messages_name_the_op_and_the_argument(self):
        x = torch.randn(2, 5, 8)
        with self.assertRaisesRegex(RuntimeError, r"sparsescope::topk_attention: expected 4-D `query` "
                                                  r"\[B, H, N, D\], got 3-D tensor \[2, 5, 8\]"):
            ops.topk_attention(x, x, x, torch.zeros(1, 1, 5, 1, dtype=torch.long))


if __name__ == "__main__":
    unittest.main()
