"""nn.init: exact checks vs PyTorch where deterministic, statistical checks on large tensors otherwise."""

import math

import numpy as np
import pytest
import tocha
import tocha.nn as tnn
import torch
from tocha.nn import init


@pytest.mark.parametrize("name,param", [("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
                                        ("conv_transpose2d", None), ("sigmoid", None), ("tanh", None),
                                        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                                        ("leaky_relu", 3), ("selu", None)])
def test_calculate_gain_matches_pytorch(name, param):
    assert init.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)


def test_calculate_gain_errors_and_logistic_extension():
    for bad in [("softmax", None), ("leaky_relu", "x"), ("leaky_relu", True)]:
        with pytest.raises(ValueError) as ours:
            init.calculate_gain(*bad)
        with pytest.raises(ValueError) as theirs:
            torch.nn.init.calculate_gain(*bad)
        assert str(ours.value) == str(theirs.value)
    # slides 002: sigmoid layers use 4x the Xavier bound; PyTorch's 'sigmoid' gain stays 1
    assert init.calculate_gain("logistic") == 4.0
    assert init.calculate_gain("sigmoid") == 1
    w = tocha.empty(300, 200)
    init.xavier_uniform_(w, gain=init.calculate_gain("logistic"))
    eps = 4 * math.sqrt(6 / (300 + 200))
    assert float(w.abs().max()) <= eps and float(w.abs().max()) > 0.98 * eps


@pytest.mark.parametrize("shape", [(7, 3), (4, 5, 3), (8, 2, 3, 3), (2, 3, 1, 2, 5)])
def test_fans_match_pytorch(shape):
    assert init._calculate_fan_in_and_fan_out(tocha.empty(*shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


def test_fan_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(tocha.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_normal_(tocha.empty(5, 3), mode="fan_avg")


@pytest.mark.parametrize("shape", [(3, 3), (3, 5), (6, 2)])
def test_eye_matches_pytorch(shape):
    w = tocha.empty(*shape, requires_grad=True)
    init.eye_(w)
    np.testing.assert_array_equal(w.detach().numpy(), torch.nn.init.eye_(torch.empty(*shape)).numpy())
    assert w.requires_grad and w.grad_fn is None
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions"):
        init.eye_(tocha.empty(2, 2, 2))


@pytest.mark.parametrize("shape,groups", [((4, 4, 3), 1), ((6, 3, 3, 3), 2), ((4, 2, 3, 3, 3), 1), ((3, 5, 2, 4), 1)])
def test_dirac_matches_pytorch(shape, groups):
    w = tocha.empty(*shape)
    init.dirac_(w, groups)
    np.testing.assert_array_equal(w.numpy(), torch.nn.init.dirac_(torch.empty(*shape), groups).numpy())


def test_dirac_errors():
    with pytest.raises(ValueError, match="3, 4, or 5 dimensions"):
        init.dirac_(tocha.empty(3, 3))
    with pytest.raises(ValueError, match="divisible by groups"):
        init.dirac_(tocha.empty(5, 2, 3), groups=2)


def test_constant_zeros_ones():
    w = tocha.empty(4, 3, requires_grad=True)
    init.constant_(w, 0.25)
    assert np.all(w.detach().numpy() == 0.25) and w.grad_fn is None
    init.zeros_(w)
    assert np.all(w.detach().numpy() == 0)
    init.ones_(w)
    assert np.all(w.detach().numpy() == 1)


N = (400, 500)  # 200k samples: sample std within ~0.3 % of the truth


def _stats(w):
    a = w.detach().numpy().astype(np.float64)
    return a.mean(), a.std(), a.min(), a.max()


@pytest.mark.parametrize("dtype", [tocha.float32, tocha.float64])
def test_uniform_normal_statistics(dtype):
    w = tocha.empty(*N, dtype=dtype)
    mean, std, lo, hi = _stats(init.uniform_(w, -0.5, 1.5))
    assert -0.5 <= lo and hi <= 1.5 and abs(mean - 0.5) < 0.01 and abs(std - 2 / math.sqrt(12)) < 0.005
    mean, std, _, _ = _stats(init.normal_(w, 1.0, 0.3))
    assert abs(mean - 1.0) < 0.003 and abs(std - 0.3) < 0.003
    assert w.dtype == dtype


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04), (1.0, 1.0, 1.5, 4.0),
                                          (0.0, 1.0, 2.5, 3.0)])
def test_trunc_normal_bounds_and_moments(mean, std, a, b):
    w = tocha.empty(*N)
    init.trunc_normal_(w, mean, std, a, b)
    m, s, lo, hi = _stats(w)
    assert a <= lo and hi <= b
    # moments of the truncated normal (same as scipy.stats.truncnorm)
    al, be = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
    z = cdf(be) - cdf(al)
    tm = mean + std * (pdf(al) - pdf(be)) / z
    tv = std ** 2 * (1 + (al * pdf(al) - be * pdf(be)) / z - ((pdf(al) - pdf(be)) / z) ** 2)
    assert abs(m - tm) < 0.01 * std + 1e-4
    assert abs(s - math.sqrt(tv)) < 0.01 * math.sqrt(tv)


@pytest.mark.parametrize("gain", [1.0, 5 / 3])
def test_xavier_statistics(gain):
    fan_in, fan_out = N[1], N[0]
    w = tocha.empty(*N)
    _, std, lo, hi = _stats(init.xavier_uniform_(w, gain=gain))
    bound = gain * math.sqrt(6 / (fan_in + fan_out))
    assert -bound <= lo and hi <= bound and abs(std - bound / math.sqrt(3)) < 0.01 * bound
    mean, std, _, _ = _stats(init.xavier_normal_(w, gain=gain))
    assert abs(std - gain * math.sqrt(2 / (fan_in + fan_out))) < 0.01 * std and abs(mean) < 0.01 * std


@pytest.mark.parametrize("a,mode,nl", [(0, "fan_in", "relu"), (0, "fan_out", "relu"), (math.sqrt(5), "fan_in",
                                                                                       "leaky_relu"),
                                       (0.1, "fan_out", "leaky_relu"), (0, "fan_in", "tanh")])
def test_kaiming_statistics(a, mode, nl):
    shape = (200, 100, 3, 3)  # conv weight: fan_in = 900, fan_out = 1800
    fan = 900 if mode == "fan_in" else 1800
    expected = torch.nn.init.calculate_gain(nl, a) / math.sqrt(fan)
    w = tocha.empty(*shape)
    _, std, lo, hi = _stats(init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nl))
    assert -math.sqrt(3) * expected <= lo and hi <= math.sqrt(3) * expected
    assert abs(std - expected) < 0.01 * expected
    mean, std, _, _ = _stats(init.kaiming_normal_(w, a=a, mode=mode, nonlinearity=nl))
    assert abs(std - expected) < 0.01 * expected and abs(mean) < 0.01 * expected


def test_kaiming_zero_element_warns():
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(tocha.empty(0, 3))


@pytest.mark.parametrize("shape,gain", [((6, 6), 1.0), ((4, 9), 2.0), ((9, 4), 1.0), ((3, 2, 2, 2), 0.5)])
def test_orthogonal(shape, gain):
    w = tocha.empty(*shape, dtype=tocha.float64)
    init.orthogonal_(w, gain)
    m = w.numpy().reshape(shape[0], -1) / gain
    if m.shape[0] <= m.shape[1]:
        np.testing.assert_allclose(m @ m.T, np.eye(m.shape[0]), atol=1e-12)
    else:
        np.testing.assert_allclose(m.T @ m, np.eye(m.shape[1]), atol=1e-12)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(tocha.empty(4))


def test_sparse():
    w = tocha.empty(50, 40)
    init.sparse_(w, sparsity=0.3, std=0.05)
    a = w.numpy()
    assert ((a == 0).sum(axis=0) >= 15).all()  # ceil(0.3·50) zeros per column
    nz = a[a != 0]
    assert abs(nz.std() - 0.05) < 0.005


def test_generator_and_seed_reproducible():
    g1 = tocha.Generator().manual_seed(3)
    g2 = tocha.Generator().manual_seed(3)
    a = init.kaiming_normal_(tocha.empty(20, 10), generator=g1)
    b = init.kaiming_normal_(tocha.empty(20, 10), generator=g2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    tocha.manual_seed(11)
    c = init.trunc_normal_(tocha.empty(50), std=0.5)
    tocha.manual_seed(11)
    d = init.trunc_normal_(tocha.empty(50), std=0.5)
    np.testing.assert_array_equal(c.numpy(), d.numpy())


def test_module_defaults_follow_pytorch_formulas():
    # Linear: kaiming_uniform(a=√5) => U(±1/√fan_in) for weight and bias, as torch.nn.Linear
    lin = tnn.Linear(400, 300)
    for p in (lin.weight, lin.bias):
        _, _, lo, hi = _stats(p)
        bound = 1 / math.sqrt(400)
        assert -bound <= lo and hi <= bound and hi > 0.95 * bound
    assert abs(_stats(lin.weight)[1] - (1 / math.sqrt(400)) / math.sqrt(3)) < 0.02 / math.sqrt(400)
    ref = torch.nn.Linear(400, 300)
    assert float(ref.weight.detach().abs().max()) <= 1 / math.sqrt(400)
    bil = tnn.Bilinear(20, 30, 40)
    assert float(bil.weight.abs().max()) <= 1 / math.sqrt(20)


def test_init_does_not_record_graph():
    w = tocha.empty(5, 5, requires_grad=True)
    for fn in (init.xavier_uniform_, init.kaiming_normal_, init.orthogonal_, init.trunc_normal_, init.eye_):
        out = fn(w)
        assert out is w and w.grad_fn is None and w.requires_grad
