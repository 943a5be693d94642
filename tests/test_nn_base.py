"""nn.Module machinery, Parameter, Linear defaults, containers, state_dict, repr, SGD vs PyTorch."""

import math

import numpy as np
import pytest
import torch

import tocha
import tocha.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 2, bias=False)
        self.register_buffer("steps", tocha.zeros(1))
        self.register_buffer("tmp", tocha.zeros(1), persistent=False)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def test_module_registration_and_iteration():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight"]
    assert [n for n, _ in net.named_buffers()] == ["steps", "tmp"]
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "fc2"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "act", "fc2"]
    assert list(net.state_dict().keys()) == ["steps", "fc1.weight", "fc1.bias", "fc2.weight"] or \
        list(net.state_dict().keys()) == ["fc1.weight", "fc1.bias", "fc2.weight", "steps"]
    assert net.fc2.bias is None
    assert sum(p.numel() for p in net.parameters()) == 4 * 8 + 8 + 16
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        net.nope


def test_state_dict_round_trip_and_errors():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    sd = a.state_dict()
    sd["fc1.weight"] = tocha.zeros(3, 3)
    with pytest.raises(RuntimeError, match="size mismatch for fc1.weight"):
        b.load_state_dict(sd)
    sd = a.state_dict()
    del sd["fc2.weight"]
    sd["extra"] = tocha.zeros(1)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "fc2.weight"'):
        b.load_state_dict(sd)
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["fc2.weight"] and res.unexpected_keys == ["extra"]


def test_load_pytorch_state_dict():
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    m.load_state_dict({k: tocha.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(m(tocha.tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_train_eval_zero_grad_requires_grad():
    net = Net()
    net.eval()
    assert not net.training and not net.fc1.training
    net.train()
    assert net.fc2.training
    net(tocha.randn(2, 4)).sum().backward()
    assert net.fc1.weight.grad is not None
    net.zero_grad()
    assert net.fc1.weight.grad is None
    net.fc1.requires_grad_(False)
    assert not net.fc1.weight.requires_grad and net.fc2.weight.requires_grad


def test_linear_default_init_matches_pytorch_formula():
    tocha.manual_seed(0)
    lin = nn.Linear(300, 200)
    bound = 1 / math.sqrt(300)   # kaiming_uniform(a=√5) gives the same bound for the weight
    w = lin.weight.detach().numpy()
    b = lin.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound


def test_repr_matches_pytorch_layout():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Flatten())
    tm = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Flatten())
    assert repr(m) == repr(tm)
    assert repr(nn.Parameter(tocha.zeros(2))).startswith("Parameter containing:\ntensor(")


def test_sequential_and_containers():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(s) == 3 and isinstance(s[0], nn.Linear) and isinstance(s[-1], nn.Linear)
    assert len(s[:2]) == 2
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    assert len(list(ml.parameters())) == 6
    md = nn.ModuleDict({"a": nn.Linear(1, 2)})
    assert "a" in md and len(list(md.parameters())) == 2
    pl = nn.ParameterList([nn.Parameter(tocha.zeros(2)) for _ in range(2)])
    assert len(list(pl.parameters())) == 2


def test_losses_match_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    t = rng.standard_normal((6, 4)).astype(np.float32)
    for cls in ("MSELoss", "L1Loss"):
        for red in ("mean", "sum", "none"):
            a = getattr(nn, cls)(reduction=red)(tocha.tensor(x), tocha.tensor(t))
            b = getattr(torch.nn, cls)(reduction=red)(torch.tensor(x), torch.tensor(t))
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.BCELoss()(tocha.tensor([1.5]), tocha.tensor([1.0]))
    with pytest.raises(ValueError, match="must be the same as input size"):
        nn.MSELoss()(tocha.zeros(2, 3), tocha.zeros(3, 2))


def test_sgd_matches_pytorch_with_groups_and_options():
    torch.manual_seed(0)
    tm = torch.nn.Linear(5, 3).double()
    m = nn.Linear(5, 3).double()
    with tocha.no_grad():
        m.weight.copy_(tocha.tensor(tm.weight.detach().numpy()))
        m.bias.copy_(tocha.tensor(tm.bias.detach().numpy()))
    kw = dict(lr=0.05, momentum=0.8, dampening=0.1, maximize=False)
    topt = torch.optim.SGD([{"params": [tm.weight], "weight_decay": 0.01}, {"params": [tm.bias], "lr": 0.2}], **kw)
    opt = tocha.optim.SGD([{"params": [m.weight], "weight_decay": 0.01}, {"params": [m.bias], "lr": 0.2}], **kw)
    x = np.random.default_rng(0).standard_normal((7, 5))
    for _ in range(20):
        topt.zero_grad()
        (tm(torch.tensor(x)) ** 2).mean().backward()
        topt.step()
        opt.zero_grad()
        (m(tocha.tensor(x)) ** 2).mean().backward()
        opt.step()
    np.testing.assert_allclose(m.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.bias.detach().numpy(), tm.bias.detach().numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        tocha.optim.SGD(m.parameters(), lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        tocha.optim.SGD(m.parameters(), lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        tocha.optim.SGD([], lr=0.1)


def test_optimizer_state_dict_round_trip():
    m = nn.Linear(3, 2)
    opt = tocha.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(tocha.randn(4, 3)).sum().backward()
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1] and "momentum_buffer" in sd["state"][0]
    opt2 = tocha.optim.SGD(m.parameters(), lr=0.5, momentum=0.9)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.1
    np.testing.assert_array_equal(opt2.state[m.weight]["momentum_buffer"].numpy(),
                                  opt.state[m.weight]["momentum_buffer"].numpy())


def test_clip_grad_matches_torch():
    rng = np.random.default_rng(0)
    g = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    tp = [torch.nn.Parameter(torch.zeros(*x.shape, dtype=torch.float64)) for x in g]
    pp = [nn.Parameter(tocha.zeros(*x.shape, dtype=tocha.float64)) for x in g]
    for a, b, x in zip(tp, pp, g):
        a.grad = torch.tensor(x)
        b.grad = tocha.tensor(x)
    n1 = torch.nn.utils.clip_grad_norm_(tp, 1.0)
    n2 = nn.utils.clip_grad_norm_(pp, 1.0)
    assert abs(n1.item() - n2.item()) < 1e-12
    for a, b in zip(tp, pp):
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-12)
    nn.utils.clip_grad_value_(pp, 0.1)
    assert max(float(p.grad.abs().max()) for p in pp) <= 0.1
