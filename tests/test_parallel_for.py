"""Kernels split with tocha::parallel_for (csrc/core/parallel.h) run a plain loop for one thread or
small inputs and an OpenMP loop otherwise: both must give the same bits (sizes here are above the
kernels' threading grains), and the contiguous (K, R) fast path of the reductions must agree with the
general (permuted / strided) path."""

import numpy as np
import pytest

import tocha
import tocha.nn.functional as F
from harness import at_thread_counts


def _run_all():
    tocha.manual_seed(5)
    a = tocha.randn(300, 257) * 3 + 1
    out = {
        "sum1": a.sum(1), "sum0": a.sum(0), "sum": a.sum(), "mean1": a.mean(1), "sumT": a.t().sum(1),
        "sum_long": tocha.randn(100003).sum(), "prod": (a * 0.01 + 1).prod(1), "amax": a.amax(1),
        "argmax": a.argmax(1), "var": a.var(1), "lse": tocha.logsumexp(a, 1),
        "isum": tocha.randint(-5, 5, (300, 257), dtype=tocha.int32).sum(1),
    }
    x = a.clone().requires_grad_(True)
    for log in (False, True):
        y = F.log_softmax(x, 1) if log else F.softmax(x, 1)
        out[f"sm{log}"] = y
        out[f"smg{log}"], = tocha.autograd.grad((y * a).sum(), [x])
    t = tocha.randint(0, 257, (300,))
    t[3] = -100
    x = a.clone().requires_grad_(True)
    loss = F.cross_entropy(x, t, label_smoothing=0.1)
    out["ce"] = loss
    out["ceg"], = tocha.autograd.grad(loss, [x])
    v = (tocha.randn(70000) * 3).requires_grad_(True)
    for name, f in (("elu", F.elu), ("lrelu", F.leaky_relu), ("softplus", F.softplus)):
        y = f(v)
        out[name] = y
        out[name + "g"], = tocha.autograd.grad((y * v).sum(), [v])
    xp = tocha.randn(8, 16, 300).requires_grad_(True)
    wp = tocha.rand(16).requires_grad_(True)
    y = F.prelu(xp, wp)
    out["prelu"] = y
    out["prelugx"], out["prelugw"] = tocha.autograd.grad((y * xp).sum(), [xp, wp])
    xl = (tocha.randn(1000, 64) * 2 + 5).requires_grad_(True)
    lw, lb = (tocha.rand(64) + 0.5).requires_grad_(True), tocha.randn(64).requires_grad_(True)
    y = F.layer_norm(xl, (64,), lw, lb)
    out["ln"] = y
    out["lngx"], out["lngw"], out["lngb"] = tocha.autograd.grad((y * xl).sum(), [xl, lw, lb])
    xb = (tocha.randn(16, 8, 20, 20) * 2 + 3).requires_grad_(True)
    rm, rv = tocha.zeros(8), tocha.ones(8)
    y = F.batch_norm(xb, rm, rv, lw[:8].detach().clone().requires_grad_(True), None, training=True)
    out["bn"], out["bnrm"], out["bnrv"] = y, rm, rv
    out["bngx"], = tocha.autograd.grad((y * xb).sum(), [xb])
    src = tocha.randn(64, 300, 40)
    ix = tocha.tensor([3, 1, 1, 0, 2])
    out["isel"] = tocha.index_select(src, 1, ix)
    d = tocha.zeros(64, 300, 40)
    d.index_add_(1, ix, tocha.randn(64, 5, 40))
    out["iadd"] = d
    out["tiled"] = a + tocha.randn(257, 300).t()
    tocha.manual_seed(9)
    out["unif"] = tocha.empty(100001).uniform_()
    out["norm"] = tocha.empty(100001).normal_()
    lp = tocha.randn(50, 16, 20).log_softmax(2).requires_grad_(True)
    il = tocha.full((16,), 50, dtype=tocha.int64)
    l = F.ctc_loss(lp, tocha.randint(1, 20, (16, 10)), il, tocha.randint(1, 11, (16,)), reduction="none")
    out["ctc"] = l
    out["ctcg"], = tocha.autograd.grad(l.sum(), [lp])
    return {k: v.detach().numpy().copy() for k, v in out.items()}


def test_parallel_for_kernels_bitwise_identical_for_1_and_2_threads():
    one, two = at_thread_counts(_run_all)
    for k in one:
        assert one[k].tobytes() == two[k].tobytes(), k


@pytest.mark.parametrize("shape,dims", [((), []), ((5,), []), ((5,), [0]), ((3, 4, 5), [2]), ((3, 4, 5), [1, 2]),
                                        ((3, 4, 5), [0, 1, 2]), ((3, 4, 5), [0]), ((3, 4, 5), [1]),
                                        ((3, 1, 5), [1, 2]), ((1, 7), [0]), ((0, 4), [1]), ((4, 0), [1]),
                                        ((40, 300), [1]), ((300, 40), [0]), ((2, 3, 1), [2])])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's mean of an empty slice
def test_reductions_contiguous_and_strided_inputs(shape, dims, dtype, keepdim):
    # contiguous inputs reducing trailing dims take the (K, R) fast path of layout_2d, the others the
    # general permute/view path: both must match NumPy (exactly for integers)
    rng = np.random.default_rng(1)
    base = np.asarray(rng.standard_normal(shape) * 10).astype(dtype)
    padded = np.zeros(shape + (2,), dtype)
    padded[..., 0] = base
    axis = tuple(dims) or None
    kw = {"dim": dims} if dims else {}
    if keepdim:
        if not dims:
            return
        kw["keepdim"] = True
    for t in (tocha.tensor(base), tocha.tensor(padded)[..., 0]):
        ref = base.sum(axis=axis, dtype=np.float64 if base.dtype.kind == "f" else np.int64, keepdims=keepdim)
        got = t.sum(**kw).numpy()
        assert got.shape == ref.shape
        if base.dtype.kind == "f":
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(t.mean(**kw).numpy(), base.astype(np.float64).mean(axis=axis, keepdims=keepdim),
                                       rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(got, ref)
        if base.size:
            np.testing.assert_array_equal(t.amax(**kw).numpy(), base.max(axis=axis, keepdims=keepdim))
