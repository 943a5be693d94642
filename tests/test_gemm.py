"""GEMM correctness: random shapes (1, primes, 0, tile remainders), every transpose combination,
strided views, batch broadcasting, fused epilogues; bitwise 1-vs-2-thread equality; the generic
(non-SIMD) path via TOCHA_CPU_ISA=generic in a subprocess."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tocha
import tocha.nn.functional as F

DIMS = st.sampled_from([0, 1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 64, 65, 127, 130])


def _operand(rng, rows, cols, transposed, dtype):
    """A (rows, cols) tensor, optionally as a transposed view of a (cols, rows) buffer."""
    if transposed:
        base = rng.standard_normal((cols, rows)).astype(dtype)
        return tocha.from_numpy(base).t(), base.T
    base = rng.standard_normal((rows, cols)).astype(dtype)
    return tocha.from_numpy(base), base


@settings(max_examples=60, deadline=None)
@given(m=DIMS, k=DIMS, n=DIMS, ta=st.booleans(), tb=st.booleans(), f64=st.booleans(), seed=st.integers(0, 1000))
def test_matmul_random_shapes_and_transposes(m, k, n, ta, tb, f64, seed):
    rng = np.random.default_rng(seed)
    dtype = np.float64 if f64 else np.float32
    a, an = _operand(rng, m, k, ta, dtype)
    b, bn = _operand(rng, k, n, tb, dtype)
    out = (a @ b).numpy()
    ref = an.astype(np.float64) @ bn.astype(np.float64)
    tol = 1e-12 if f64 else 1e-5
    np.testing.assert_allclose(out, ref, rtol=tol * 10, atol=tol * max(k, 1) * 4)


@pytest.mark.parametrize("act", ["relu", "gelu", None])
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 13, 5), (64, 784, 128), (33, 65, 129)])
def test_linear_fused_epilogue(shape, act):
    m, k, n = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    from tocha._ops import _linear_act

    out = _linear_act(tocha.tensor(x), tocha.tensor(w), tocha.tensor(b), act).numpy()
    ref = x.astype(np.float64) @ w.T.astype(np.float64) + b
    if act == "relu":
        ref = np.maximum(ref, 0)
    elif act == "gelu":
        from math import erf

        ref = 0.5 * ref * (1 + np.vectorize(erf)(ref / np.sqrt(2)))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.sqrt(k))


def test_batched_broadcast_and_sliced_operands():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 1, 9, 12)).astype(np.float32)
    b = rng.standard_normal((3, 24, 7)).astype(np.float32)
    ta = tocha.from_numpy(a)
    tb = tocha.from_numpy(b)[:, ::2]            # row-strided operand
    ref = a.astype(np.float64) @ b[:, ::2].astype(np.float64)
    np.testing.assert_allclose((ta @ tb).numpy(), ref, rtol=1e-5, atol=1e-5)


def test_matmul_and_linear_bitwise_identical_for_1_and_2_threads():
    rng = np.random.default_rng(2)
    a = tocha.tensor(rng.standard_normal((257, 300)).astype(np.float32))
    b = tocha.tensor(rng.standard_normal((300, 190)).astype(np.float32))
    w = tocha.tensor(rng.standard_normal((190, 300)).astype(np.float32))
    n = tocha.get_num_threads()
    outs = []
    try:
        for k in (1, 2):
            tocha.set_num_threads(k)
            outs.append(((a @ b).numpy(), F.linear(a, w).numpy(), (a.t() @ a).numpy()))
    finally:
        tocha.set_num_threads(n)
    for x, y in zip(*outs):
        np.testing.assert_array_equal(x, y)


def test_batched_matmul_parallel_over_batch_bitwise_and_correct():
    # items too small for the GEMM to thread itself (here 24 x 28 x 1024, 1.4 MFLOP) run in parallel over the
    # batch (with broadcasting of the batch dims): same bits as one thread, and the float64 reference
    rng = np.random.default_rng(12)
    a = rng.standard_normal((5, 1, 24, 28)).astype(np.float32)
    b = rng.standard_normal((3, 28, 1024)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    n = tocha.get_num_threads()
    outs = []
    try:
        for k in (1, 2):
            tocha.set_num_threads(k)
            outs.append((tocha.tensor(a) @ tocha.tensor(b)).numpy())
    finally:
        tocha.set_num_threads(n)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_allclose(outs[1], ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("m,k,n", [(784, 64, 128), (64, 784, 128), (5, 300, 2000), (2000, 300, 5),
                                   (6, 700, 16), (131, 257, 97)])
@pytest.mark.parametrize("f64", [False, True])
def test_partitioned_threads_bitwise_and_correct_with_fused_bias_act(m, k, n, f64):
    # multi-threaded GEMM = one sub-GEMM per thread on a tile-aligned grid of C (split along M, N or both,
    # fewer threads than asked when there are too few tiles): 1, 2, 3 and 4 threads must give the same bits,
    # including the bias/activation epilogue whose bias pointer is offset per block
    from tocha._ops import _linear_act

    dt = np.float64 if f64 else np.float32
    rng = np.random.default_rng(m * 7 + n)
    x, w, b = (rng.standard_normal(s).astype(dt) for s in ((m, k), (n, k), (n,)))
    tx, tw, tb = tocha.tensor(x), tocha.tensor(w), tocha.tensor(b)
    ref = x.astype(np.float64) @ w.astype(np.float64).T + b
    nt0 = tocha.get_num_threads()
    outs = []
    try:
        for nt in (1, 2, 3, 4):
            tocha.set_num_threads(nt)
            outs.append(((tx @ tw.t()).numpy(), _linear_act(tx, tw, tb, "relu").numpy(),
                         _linear_act(tx, tw, tb, "gelu").numpy()))
    finally:
        tocha.set_num_threads(nt0)
    for other in outs[1:]:
        for x1, y1 in zip(outs[0], other):
            np.testing.assert_array_equal(x1, y1)
    tol = 1e-9 * k if f64 else 1e-4 * k
    np.testing.assert_allclose(outs[0][0], ref - b, rtol=1e-4, atol=tol)
    np.testing.assert_allclose(outs[0][1], np.maximum(ref, 0), rtol=1e-4, atol=tol)


# gemm_prepacked (cpu/gemm.h): A and/or B packed up front (whole operand, all K blocks) must give the same bits
# as the plain gemm on the same operands -- odd M, N (not multiples of the 6x16 / 6x8 / 4x8 / 4x4 tiles),
# K above the K block (256) so there are several K blocks, strided / transposed operands, accumulate, bias
# and activations -- for 1, 2 and 3 threads (the threaded GEMM splits C into blocks that start inside the
# packed operands).
# The small ones (both operands <= 40 KiB) run the unpacked small-problem path in plain gemm(): in-place
# rows/columns plus packed edge rows (M % 6) and columns (N % 16, all of B for the B^T view), and two K
# blocks for (1, 300, 9) / (13, 300, 17) -- all bitwise equal to the packed path.
PREPACKED_SHAPES = [(1, 1, 1), (7, 13, 5), (13, 300, 17), (64, 288, 196), (67, 577, 130), (6, 700, 16),
                    (131, 257, 97), (300, 9, 1000), (5, 40, 33), (12, 64, 48), (64, 64, 64), (1, 300, 9),
                    (17, 3, 1), (96, 96, 96)]
PREPACKED_SCRIPT = r"""
import numpy as np, tocha, sys
from tocha._tensor import _wrap
shapes, dts = eval(sys.argv[1]), sys.argv[2].split(",")
C = tocha._C
def t(x):
    return tocha.from_numpy(np.ascontiguousarray(x))._a
for (m, k, n) in shapes:
    for dt in dts:
        rng = np.random.default_rng(m * 1000 + k + n)
        a = rng.standard_normal((m, k)).astype(dt)
        b = rng.standard_normal((k, n)).astype(dt)
        c0 = rng.standard_normal((m, n)).astype(dt)
        bias = rng.standard_normal(n).astype(dt)
        ops = [(t(a), t(b)), (tocha.from_numpy(np.ascontiguousarray(a.T)).t()._a,  # transposed views
                              tocha.from_numpy(np.ascontiguousarray(b.T)).t()._a)]
        ref = a.astype(np.float64) @ b.astype(np.float64)
        # M == 1 or N == 1 without pre-packing runs the matrix-vector kernel: bitwise equal across thread
        # counts, within rounding of the tiled (pre-packed) result
        gemv = m == 1 or n == 1
        for view, (ta, tb) in enumerate(ops):
            for cc, bb, act in ((None, None, 0), (t(c0), None, 0), (None, t(bias), 1), (t(c0), t(bias), 2)):
                outs, packed = [], []
                for nt in (1, 2, 3):
                    tocha.set_num_threads(nt)
                    for pa, pb in ((False, False), (True, False), (False, True), (True, True)):
                        o = _wrap(C.gemm_prepacked_check(ta, tb, pa, pb, cc, bb, act)).numpy()
                        (packed if gemv and (pa or pb) else outs).append(o)
                for o in outs[1:]:
                    np.testing.assert_array_equal(outs[0], o)
                for o in packed[1:]:
                    np.testing.assert_array_equal(packed[0], o)
                if packed:
                    tol = 1e-12 if dt == "float64" else 2e-6
                    np.testing.assert_allclose(outs[0], packed[0], rtol=tol * 10, atol=tol * k * 4)
                if cc is None and bb is None:
                    tol = 1e-9 if dt == "float64" else 1e-4
                    np.testing.assert_allclose(outs[0], ref, rtol=tol, atol=tol * k)
                    if not (gemv and view):  # (the matrix-vector kernel sums row- and column-major differently)
                        np.testing.assert_array_equal(outs[0], (tocha.from_numpy(a) @ tocha.from_numpy(b)).numpy())
print("ok")
"""


@pytest.mark.parametrize("generic", [False, True])
def test_prepacked_gemm_bitwise_equal_to_plain_gemm(generic):
    env = dict(os.environ)
    if generic:
        env["TOCHA_CPU_ISA"] = "generic"
    r = subprocess.run([sys.executable, "-c", PREPACKED_SCRIPT, repr(PREPACKED_SHAPES), "float32,float64"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


@pytest.mark.parametrize("f64", [False, True])
def test_edge_tiles_bitwise_equal_to_full_tiles(f64):
    # The SIMD micro-kernel runs narrower k loops on edge tiles (first 2 or 4 rows, first vector of B); every
    # C element must still get the same bits as inside a full 6 x 16 (6 x 8) tile: a[:m] @ b[:, :n] against the
    # corner of the full product, and against the plain k-order float64 reference within rounding.
    dt = np.float64 if f64 else np.float32
    rng = np.random.default_rng(5)
    for k in (1, 3, 9, 64, 300):
        a = rng.standard_normal((24, k)).astype(dt)
        b = rng.standard_normal((k, 48)).astype(dt)
        full = (tocha.tensor(a) @ tocha.tensor(b)).numpy()
        for m in (1, 2, 3, 4, 5, 6, 7, 10, 13):
            for n in (1, 3, 4, 8, 9, 12, 16, 17, 20, 33):
                part = (tocha.tensor(a[:m]) @ tocha.tensor(b[:, :n])).numpy()
                tol = 1e-12 if f64 else 1e-5
                if m == 1 or n == 1:   # the matrix-vector kernel: same values within rounding, not bits
                    np.testing.assert_allclose(part, full[:m, :n], rtol=tol, atol=tol * k)
                else:
                    np.testing.assert_array_equal(part, full[:m, :n], err_msg=f"m={m} n={n} k={k}")
                ref = a[:m].astype(np.float64) @ b[:, :n].astype(np.float64)
                np.testing.assert_allclose(part, ref, rtol=tol * 10, atol=tol * k * 4)


def test_fma_peak_probe():
    peak = tocha._C.fma_peak_gflops(0.01)
    if tocha._C.gemm_isa() == "generic":
        assert peak == 0.0
    else:
        assert peak > 1.0  # GFLOP/s of a tight FMA loop: any real x86-64 core does far more


def test_gemm_isa_is_reported():
    assert tocha._C.gemm_isa() in ("avx512", "avx2", "generic")


GENERIC_SCRIPT = r"""
import numpy as np, tocha
assert tocha._C.gemm_isa() == "generic", tocha._C.gemm_isa()
rng = np.random.default_rng(0)
for (m, k, n) in [(1, 1, 1), (7, 13, 5), (130, 65, 17), (64, 200, 96)]:
    a = rng.standard_normal((m, k)); b = rng.standard_normal((k, n))
    for dt in (np.float32, np.float64):
        out = (tocha.tensor(a.astype(dt)) @ tocha.tensor(b.astype(dt)).t().contiguous().t()).numpy()
        np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-4 * k)
print("ok")
"""


def test_generic_isa_path_in_subprocess():
    env = dict(os.environ, TOCHA_CPU_ISA="generic")
    r = subprocess.run([sys.executable, "-c", GENERIC_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


@pytest.mark.parametrize("m,k,n", [(13, 20, 33), (7, 5, 3), (100, 300, 90)])
def test_matmul_expanded_and_stepped_operands(m, k, n):
    # stride-0 rows/columns (expand) and stepped slices, read in place by the small-problem path and packed
    # by the blocked one; checked against float64 NumPy
    rng = np.random.default_rng(m * k + n)
    row = rng.standard_normal((1, k)).astype(np.float32)
    brow = rng.standard_normal((1, n)).astype(np.float32)
    bcol = rng.standard_normal((k, 1)).astype(np.float32)
    big = rng.standard_normal((3 * m + 3, 2 * k + 2)).astype(np.float32)
    bigb = rng.standard_normal((2 * k + 2, 2 * n + 2)).astype(np.float32)
    cases = [
        (tocha.tensor(row).expand(m, k), np.broadcast_to(row, (m, k)), tocha.tensor(bigb)[::2, ::2][:k, :n],
         bigb[::2, ::2][:k, :n]),
        (tocha.tensor(big)[::3, 1::2][:m, :k], big[::3, 1::2][:m, :k], tocha.tensor(brow).expand(k, n),
         np.broadcast_to(brow, (k, n))),
        (tocha.tensor(big)[::3, 1::2][:m, :k], big[::3, 1::2][:m, :k], tocha.tensor(bcol).expand(k, n),
         np.broadcast_to(bcol, (k, n))),
    ]
    for ta, na, tb, nb in cases:
        ref = na.astype(np.float64) @ nb.astype(np.float64)
        np.testing.assert_allclose((ta @ tb).numpy(), ref, rtol=1e-4, atol=1e-4 * np.sqrt(k))


# ---------------------------------------------------------------- matrix-vector products (M == 1 or N == 1)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_matrix_vector_products_all_layouts(dt):
    """M == 1 / N == 1 run a dedicated kernel (dot products over contiguous rows, or four columns at a time
    for column-major operands): every layout and stride against a float64 reference and against torch,
    incl. 1-d operands, A^T views, stepped (non-unit-stride) matrices and vectors, and batched operands."""
    rng = np.random.default_rng(11)
    tol = 1e-12 if dt == np.float64 else 2e-6

    def check(x, y):
        r = (tocha.tensor(x) @ tocha.tensor(y)) if isinstance(x, np.ndarray) else x @ y
        xn = x if isinstance(x, np.ndarray) else x.numpy()
        yn = y if isinstance(y, np.ndarray) else y.numpy()
        ref = xn.astype(np.float64) @ yn.astype(np.float64)
        k = xn.shape[-1]
        np.testing.assert_allclose(r.numpy(), ref, rtol=tol * 10, atol=tol * 4 * k)
        assert r.dtype == tocha.tensor(np.zeros(1, dt)).dtype

    for m, k in [(1, 1), (3, 5), (7, 8), (33, 17), (64, 64), (300, 257), (1000, 784), (5, 2000)]:
        a = rng.standard_normal((m, k)).astype(dt)
        v = rng.standard_normal(k).astype(dt)
        check(a, v)                                       # (m, k) @ (k,)
        check(a, v[:, None])                              # (m, k) @ (k, 1)
        check(v, a.T.copy())                              # (k,) @ (k, m): M == 1, row-major matrix
        check(v[None, :], np.ascontiguousarray(a.T))      # (1, k) @ (k, m)
        at = tocha.tensor(np.ascontiguousarray(a.T)).T    # A^T view: unit row stride (column form)
        check(at, tocha.tensor(v))
        check(tocha.tensor(v)[None, :], at.T.contiguous().T.T)
        big = tocha.tensor(rng.standard_normal((m, 2 * k)).astype(dt))
        stepped = big[:, ::2]                             # no unit stride at all
        vs = tocha.tensor(rng.standard_normal(3 * k).astype(dt))[::3]
        check(stepped, vs)
        check(vs, tocha.tensor(rng.standard_normal((2 * k, m)).astype(dt))[::2])
    b = rng.standard_normal((4, 50, 30)).astype(dt)       # batched: every item a matrix-vector product
    check(b, rng.standard_normal(30).astype(dt))
    check(rng.standard_normal(50).astype(dt), b)
    check(b, rng.standard_normal((4, 30, 1)).astype(dt))


def test_matrix_vector_products_bitwise_for_1_and_2_threads():
    rng = np.random.default_rng(12)
    a = tocha.tensor(rng.standard_normal((4096, 784)).astype(np.float32))
    v = tocha.tensor(rng.standard_normal(784).astype(np.float32))
    w = tocha.tensor(rng.standard_normal((4096, 1)).astype(np.float32))
    outs = {}
    for nt in (1, 2):
        tocha.set_num_threads(nt)
        outs[nt] = [(a @ v).numpy(), (a.T @ w).numpy(), (v @ a.T).numpy()]
    tocha.set_num_threads(2)
    for x, y in zip(outs[1], outs[2]):
        np.testing.assert_array_equal(x, y)


def test_linear_with_one_output_and_its_gradients_match_torch():
    """nn.Linear(d, 1) (logistic regression) is N == 1 forward and M == 1 for the weight gradient; the fused
    bias / ReLU / GELU epilogue and accumulation into C run in the matrix-vector path too."""
    import tocha.nn.functional as F
    rng = np.random.default_rng(13)
    x = rng.standard_normal((256, 784)).astype(np.float32)
    w = rng.standard_normal((1, 784)).astype(np.float32) * 0.05
    b = rng.standard_normal(1).astype(np.float32)
    for act in (None, "relu", "gelu"):
        tx, tw, tb = (tocha.tensor(t, requires_grad=True) for t in (x, w, b))
        px, pw, pb = (torch.tensor(t, requires_grad=True) for t in (x, w, b))
        y, yp = F.linear(tx, tw, tb), torch.nn.functional.linear(px, pw, pb)
        if act:
            y, yp = getattr(F, act)(y), getattr(torch.nn.functional, act)(yp)
        np.testing.assert_allclose(y.detach().numpy(), yp.detach().numpy(), rtol=1e-5, atol=1e-5)
        g = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(tocha.tensor(g))
        yp.backward(torch.tensor(g))
        for t, p in ((tx, px), (tw, pw), (tb, pb)):
            np.testing.assert_allclose(t.grad.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-4)
