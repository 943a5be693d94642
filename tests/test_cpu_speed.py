"""CPU fast paths of elementwise ops and reductions (vecmath SIMD kernels, threading): determinism across
thread counts, agreement of the generic (TOCHA_CPU_ISA=generic) and SIMD paths, accuracy of long sums,
and every SIMD tail length / layout (contiguous, strided, broadcast, in-place)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tocha
import tocha.nn.functional as F
from harness import at_thread_counts, subprocess_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _big_inputs():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(1_000_003).astype(np.float32)
    b = rng.standard_normal(1_000_003).astype(np.float32)
    m = rng.standard_normal((1031, 1000)).astype(np.float32) * 4
    v = rng.standard_normal(1000).astype(np.float32)
    return a, b, m, v


def _results():
    """Every fast-path op on large inputs (name -> float32 ndarray)."""
    a, b, m, v = _big_inputs()
    ta, tb, tm, tv = (tocha.from_numpy(x) for x in (a, b, m, v))
    pos = tocha.from_numpy(np.abs(a) + 1e-3)
    r = {
        "add": ta + tb, "sub": ta - tb, "mul": ta * tb, "div": ta / (tb.abs() + 1),
        "maximum": tocha.maximum(ta, tb), "minimum": tocha.minimum(ta, tb),
        "add_scalar": ta + 0.5, "rsub_scalar": 2.0 - ta, "bcast_add": tm + tv, "bcast_mul": tm * tv[None],
        "strided_add": tm + tm.t().contiguous().t(), "transposed_add": tm[:1000] + tm[:1000].t(),
        "exp": tocha.exp(ta), "log": tocha.log(pos), "tanh": tocha.tanh(ta), "sigmoid": tocha.sigmoid(ta),
        "relu": tocha.relu(ta), "silu": F.silu(ta), "softplus": tocha._ops.softplus_(ta), "mish": F.mish(ta),
        "gelu_tanh": tocha._ops.gelu_tanh_(ta), "exp_strided": tocha.exp(tm.t()),
        "sum": ta.sum(), "sum0": tm.sum(0), "sum1": tm.sum(1), "mean": ta.mean(), "max": ta.max(),
        "min": ta.min(), "amax1": tm.amax(1), "softmax": F.softmax(tm, dim=1),
        "log_softmax": F.log_softmax(tm, dim=1), "softmax0": F.softmax(tm, dim=0),
        "logsumexp": tocha.logsumexp(tm, dim=1),
    }
    return {k: np.asarray(t.numpy()) for k, t in r.items()}


def test_bitwise_equal_1_and_2_threads():
    one, two = at_thread_counts(_results)
    for k in one:
        assert one[k].tobytes() == two[k].tobytes(), f"{k} differs between 1 and 2 threads"


def _dump_results(path):
    np.savez(path, **_results())


def test_generic_path_matches_simd(tmp_path):
    env = subprocess_env(TOCHA_CPU_ISA="generic")
    out = tmp_path / "generic.npz"
    code = ("import test_cpu_speed as t, tocha; assert tocha._C.gemm_isa() == 'generic'; "
            f"t._dump_results({str(out)!r})")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    gen = np.load(out)
    simd = _results()
    for k, v in simd.items():
        # sums differ by summation order: tolerance relative to sum(|x|) (~1e3 here), not to the result
        atol = 1e-2 if k.startswith("sum") else 1e-6
        np.testing.assert_allclose(gen[k], v, rtol=2e-6, atol=atol, err_msg=k)


@pytest.mark.parametrize("n", [10_000_019, 1 << 24])
def test_long_sum_is_accurate(n):
    rng = np.random.default_rng(n)
    x = rng.random(n, dtype=np.float32)   # all positive: naive float32 accumulation drifts ~1e-3
    ref = x.astype(np.float64).sum()
    t = tocha.from_numpy(x)
    assert abs(float(t.sum()) - ref) / ref < 2e-7
    assert abs(float(t.mean()) - ref / n) / (ref / n) < 2e-7
    # the same row as part of a 2-d reduction
    assert abs(float(t.reshape(1, n).sum(1)[0]) - ref) / ref < 2e-7


@pytest.mark.parametrize("n", list(range(41)) + [255, 256, 257, 1023, 4097])
def test_every_tail_length(n):
    rng = np.random.default_rng(n)
    a = (rng.standard_normal(n) * 3).astype(np.float32)
    b = (rng.standard_normal(n) * 3).astype(np.float32)
    ta, tb = tocha.from_numpy(a), tocha.from_numpy(b)
    np.testing.assert_array_equal((ta + tb).numpy(), a + b)
    np.testing.assert_array_equal((ta * 2.5).numpy(), a * np.float32(2.5))
    np.testing.assert_array_equal((1.5 / tb).numpy(), np.float32(1.5) / b)
    np.testing.assert_array_equal(tocha.maximum(ta, tb).numpy(), np.maximum(a, b))
    np.testing.assert_array_equal(tocha.relu(ta).numpy(), np.maximum(a, 0))
    np.testing.assert_allclose(tocha.exp(ta).numpy(), np.exp(a), rtol=3e-7)
    np.testing.assert_allclose(tocha.tanh(ta).numpy(), np.tanh(a), rtol=4e-7, atol=1e-30)
    if n:
        np.testing.assert_allclose(float(ta.sum()), a.astype(np.float64).sum(), rtol=1e-5, atol=1e-5)
        assert float(ta.max()) == a.max() and float(ta.min()) == a.min()
        np.testing.assert_allclose(F.softmax(ta, dim=0).numpy(),
                                   np.exp(a - a.max()) / np.exp(a - a.max()).sum(), rtol=2e-6)


def test_layouts_give_identical_bits():
    rng = np.random.default_rng(3)
    m = rng.standard_normal((67, 45)).astype(np.float32)
    t = tocha.from_numpy(m)
    tt = t.t()                                    # strided view
    for fn in (tocha.exp, tocha.tanh, tocha.sigmoid, tocha.relu, F.silu):
        np.testing.assert_array_equal(fn(tt).numpy(), fn(tt.contiguous()).numpy())
    # in place on a strided view
    c = tocha.from_numpy(m.copy())
    c.t().exp_()
    np.testing.assert_array_equal(c.numpy(), tocha.exp(t).numpy())
    d = tocha.from_numpy(m.copy())
    d[:, ::2].add_(1.0)
    e = m.copy()
    e[:, ::2] += 1
    np.testing.assert_array_equal(d.numpy(), e)


def test_nan_propagation_in_fast_paths():
    x = np.array([1.0, np.nan, -2.0] * 11, dtype=np.float32)
    y = np.array([0.0, 3.0, np.nan] * 11, dtype=np.float32)
    tx, ty = tocha.from_numpy(x), tocha.from_numpy(y)
    assert np.array_equal(np.isnan(tocha.maximum(tx, ty).numpy()), np.isnan(x) | np.isnan(y))
    assert np.array_equal(np.isnan(tocha.minimum(tx, ty).numpy()), np.isnan(x) | np.isnan(y))
    assert np.isnan(float(tx.max())) and np.isnan(float(tx.min())) and np.isnan(float(tx.sum()))
    assert np.isnan(F.softmax(tx, dim=0).numpy()).all()


@pytest.mark.parametrize("shape", [(32, 32), (33, 70), (100, 37), (257, 64)])
def test_transposed_operand_tiled_path(shape):
    rng = np.random.default_rng(sum(shape))
    r, c = shape
    x = rng.standard_normal((r, c)).astype(np.float32)
    y = rng.standard_normal((c, r)).astype(np.float32)
    v = rng.standard_normal((c, 1)).astype(np.float32)
    tx, ty, tv = tocha.from_numpy(x), tocha.from_numpy(y), tocha.from_numpy(v)
    np.testing.assert_array_equal((tx + ty.t()).numpy(), x + y.T)
    np.testing.assert_array_equal((ty.t() - tx).numpy(), y.T - x)
    np.testing.assert_array_equal((ty.t() * ty.t()).numpy(), y.T * y.T)
    np.testing.assert_array_equal(tocha.maximum(tx, tv.t()).numpy(), np.maximum(x, v.T))
    np.testing.assert_array_equal((ty.t() / (tv.t().abs() + 1)).numpy(), y.T / (np.abs(v.T) + 1))
    z = tocha.from_numpy(x.copy())
    z.add_(ty.t())
    np.testing.assert_array_equal(z.numpy(), x + y.T)
