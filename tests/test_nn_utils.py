"""nn.utils vs PyTorch: gradient clipping, parameters <-> vector, and the L1/L2 penalty helpers."""

import math

import numpy as np
import pytest
import tocha
import tocha.nn.utils as U
import torch


def _pair(dtype="float64", seed=0):
    """Three tensors with gradients, the same in tocha and torch."""
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    vals = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [3 * rng.standard_normal(s).astype(dtype) for s in shapes]
    ours, theirs = [], []
    for v, g in zip(vals, grads):
        a = tocha.tensor(v, requires_grad=True)
        a.grad = tocha.tensor(g)
        b = torch.tensor(v, requires_grad=True)
        b.grad = torch.tensor(g)
        ours.append(a)
        theirs.append(b)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3, math.inf, 0])
@pytest.mark.parametrize("max_norm", [0.5, 1e4])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_clip_grad_norm_matches_pytorch(norm_type, max_norm, dtype):
    ours, theirs = _pair(dtype)
    n1 = U.clip_grad_norm_(ours, max_norm, norm_type)
    n2 = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    rtol = 1e-10 if dtype == "float64" else 1e-5
    assert float(n1) == pytest.approx(float(n2), rel=rtol)
    assert n1.dtype == getattr(tocha, dtype)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol)


def test_clip_grad_norm_single_tensor_no_grads_and_nonfinite():
    w = tocha.tensor([3.0, 4.0], requires_grad=True)
    w.grad = tocha.tensor([3.0, 4.0])
    assert float(U.clip_grad_norm_(w, 1.0)) == pytest.approx(5.0)
    np.testing.assert_allclose(w.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    assert float(U.clip_grad_norm_([tocha.zeros(2, requires_grad=True)], 1.0)) == 0.0
    w.grad = tocha.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        U.clip_grad_norm_([w], 1.0, error_if_nonfinite=True)


def test_get_total_norm_and_clip_grads_with_norm():
    ours, theirs = _pair()
    t1 = U.get_total_norm([p.grad for p in ours], 2.0)
    t2 = torch.nn.utils.get_total_norm([p.grad for p in theirs], 2.0)
    assert float(t1) == pytest.approx(float(t2), rel=1e-12)
    U.clip_grads_with_norm_(ours, 1.0, t1)
    torch.nn.utils.clip_grads_with_norm_(theirs, 1.0, t2)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("clip", [1.0, 0.1, 10.0])
def test_clip_grad_value_matches_pytorch(clip):
    ours, theirs = _pair()
    U.clip_grad_value_(ours, clip)
    torch.nn.utils.clip_grad_value_(theirs, clip)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
        assert np.abs(a.grad.numpy()).max() <= clip


def test_parameters_to_vector_round_trip():
    ours, theirs = _pair()
    v1 = U.parameters_to_vector(ours)
    v2 = torch.nn.utils.parameters_to_vector(theirs)
    np.testing.assert_array_equal(v1.detach().numpy(), v2.detach().numpy())
    # differentiable: d(sum(vec * c))/dp = c
    c = tocha.arange(v1.numel(), dtype=tocha.float64)
    for p in ours:
        p.grad = None
    (v1 * c).sum().backward()
    np.testing.assert_array_equal(np.concatenate([p.grad.numpy().ravel() for p in ours]), c.numpy())
    new = tocha.arange(v1.numel(), dtype=tocha.float64) * 0.5
    U.vector_to_parameters(new, ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(new.numpy()), theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
        assert a.grad_fn is None


def test_vector_to_parameters_errors():
    ours, _ = _pair()
    with pytest.raises(TypeError, match="expected torch.Tensor"):
        U.vector_to_parameters([1.0, 2.0], ours)
    with pytest.raises(ValueError, match="vector has 3 elements but the parameters need 23"):
        U.vector_to_parameters(tocha.zeros(3, dtype=tocha.float64), ours)


def test_l1_penalty_value_and_gradient():
    ours, theirs = _pair()
    pen = U.l1_penalty(ours)
    ref = sum(p.abs().sum() for p in theirs)
    assert float(pen) == pytest.approx(float(ref.detach()), rel=1e-12)
    for p in ours:
        p.grad = None
    for p in theirs:
        p.grad = None
    (0.1 * pen).backward()
    (0.1 * ref).backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(a.grad.numpy(), 0.1 * np.sign(a.detach().numpy()))
    assert float(U.l1_penalty([])) == 0.0
    w = tocha.tensor([0.0, -2.0], requires_grad=True)
    U.l1_penalty(w).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [0.0, -1.0])  # subgradient 0 at 0


def test_l2_penalty_equals_sgd_weight_decay():
    # lam * l2_penalty(w) in the loss == SGD(weight_decay=lam)
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(5)
    x = tocha.tensor(rng.standard_normal((8, 5)))
    a = tocha.tensor(w0, requires_grad=True)
    b = tocha.tensor(w0, requires_grad=True)
    oa = tocha.optim.SGD([a], lr=0.1)
    ob = tocha.optim.SGD([b], lr=0.1, weight_decay=0.3)
    for _ in range(5):
        oa.zero_grad()
        ob.zero_grad()
        ((x @ a).pow(2).mean() + 0.3 * U.l2_penalty(a)).backward()
        (x @ b).pow(2).mean().backward()
        oa.step()
        ob.step()
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)


def test_l1_penalty_drives_weights_to_zero():
    # lasso on an over-parameterised regression: irrelevant weights shrink far more than relevant ones
    rng = np.random.default_rng(1)
    X = rng.standard_normal((64, 10))
    y = X[:, 0] * 2.0 - X[:, 1]
    xt, yt = tocha.tensor(X), tocha.tensor(y)
    w = tocha.zeros(10, dtype=tocha.float64, requires_grad=True)
    opt = tocha.optim.SGD([w], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        ((xt @ w - yt).pow(2).mean() + 0.05 * U.l1_penalty(w)).backward()
        opt.step()
    got = w.detach().numpy()
    assert abs(got[0] - 2.0) < 0.1 and abs(got[1] + 1.0) < 0.1
    assert np.abs(got[2:]).max() < 0.03
