"""End-to-end: logistic regression (sigmoid + BCE) and an XOR MLP (slides 004) learn with optim.SGD;
a tiny MLP's loss curve follows PyTorch's from the same initial weights."""

import numpy as np
import torch

import tocha
import tocha.nn as nn


def test_logistic_regression_learns_separable_problem():
    tocha.manual_seed(0)
    rng = np.random.default_rng(0)
    x0 = rng.normal([-2, -2], 1.0, (100, 2))
    x1 = rng.normal([2, 2], 1.0, (100, 2))
    X = tocha.tensor(np.vstack([x0, x1]), dtype=tocha.float32)
    y = tocha.tensor(np.r_[np.zeros(100), np.ones(100)], dtype=tocha.float32).unsqueeze(1)
    model = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    opt = tocha.optim.SGD(model.parameters(), lr=0.5)
    loss_fn = nn.BCELoss()
    first = None
    for _ in range(200):
        opt.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    acc = ((model(X) >= 0.5).float() == y).float().mean().item()   # threshold 0.5 as in slides 000/004
    assert loss.item() < first / 3
    assert acc >= 0.97


def test_mlp_learns_xor():
    tocha.manual_seed(1)
    X = tocha.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = tocha.tensor([0, 1, 1, 0])
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = tocha.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(300):
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(X), y)
        loss.backward()
        opt.step()
    pred = model(X).argmax(1)
    assert pred.tolist() == [0, 1, 1, 0]
    assert loss.item() < 0.05


def _copy_params(tmodel, model):
    with tocha.no_grad():
        for (n1, p1), (n2, p2) in zip(tmodel.named_parameters(), model.named_parameters()):
            assert n1 == n2
            p2.copy_(tocha.tensor(p1.detach().numpy()))


def test_mlp_loss_curve_follows_pytorch():
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3)).double()
    m = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3)).double()
    _copy_params(tm, m)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 10))
    Y = rng.integers(0, 3, 64)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True)
    opt = tocha.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True)
    for step in range(50):
        i = slice((step * 16) % 64, (step * 16) % 64 + 16)
        topt.zero_grad()
        tl = torch.nn.functional.cross_entropy(tm(torch.tensor(X[i])), torch.tensor(Y[i]))
        tl.backward()
        topt.step()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m(tocha.tensor(X[i])), tocha.tensor(Y[i]))
        loss.backward()
        opt.step()
        assert abs(loss.item() - tl.item()) <= 1e-9 * max(1.0, abs(tl.item())), step
    for p1, p2 in zip(tm.parameters(), m.parameters()):
        np.testing.assert_allclose(p2.detach().numpy(), p1.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_fused_linear_relu_in_sequential_matches_unfused():
    tocha.manual_seed(0)
    m = nn.Sequential(nn.Linear(7, 13), nn.ReLU(), nn.Linear(13, 5))
    x = tocha.randn(9, 7, requires_grad=True)
    fused = m(x)
    unfused = m[2](m[1](m[0](x)))
    np.testing.assert_allclose(fused.detach().numpy(), unfused.detach().numpy(), rtol=1e-6, atol=1e-6)
    g1 = tocha.autograd.grad(fused.sum(), [x, m[0].weight])
    g2 = tocha.autograd.grad(unfused.sum(), [x, m[0].weight])
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
