"""LR schedulers vs PyTorch: the lr (and momentum) sequences over >= 40 steps, state_dict round
trips, and argument validation."""

import copy
import math
import warnings

import pytest
import tocha
import tocha.optim as toptim
import torch

STEPS = 40


def _opts(m, opt_name="SGD"):
    """An optimiser with two param groups (lr 0.1 and 0.02) from library m (torch or tocha)."""
    a = m.zeros(3, requires_grad=True)
    b = m.zeros(2, requires_grad=True)
    kw = {"momentum": 0.9} if opt_name == "SGD" else {}
    return getattr(m.optim, opt_name)([{"params": [a]}, {"params": [b], "lr": 0.02}], lr=0.1, **kw)


# name -> (optimizer, factory(lib_scheduler_module, optimizer)). The lambdas get torch's or tocha's
# lr_scheduler module so one line drives both sides.
SCHEDS = {
    "LambdaLR": ("SGD", lambda S, o: S.LambdaLR(o, lambda e: 0.95 ** e)),
    "LambdaLR-per-group": ("SGD", lambda S, o: S.LambdaLR(o, [lambda e: 1 / (1 + e), lambda e: 0.9 ** (e // 3)])),
    "MultiplicativeLR": ("SGD", lambda S, o: S.MultiplicativeLR(o, lambda e: 0.97)),
    "StepLR": ("SGD", lambda S, o: S.StepLR(o, step_size=7)),
    "StepLR-gamma": ("SGD", lambda S, o: S.StepLR(o, step_size=3, gamma=0.5)),
    "MultiStepLR": ("SGD", lambda S, o: S.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.3)),
    "ExponentialLR": ("SGD", lambda S, o: S.ExponentialLR(o, gamma=0.93)),
    "CosineAnnealingLR": ("SGD", lambda S, o: S.CosineAnnealingLR(o, T_max=15)),
    "CosineAnnealingLR-eta": ("SGD", lambda S, o: S.CosineAnnealingLR(o, T_max=10, eta_min=1e-3)),
    "LinearLR": ("SGD", lambda S, o: S.LinearLR(o)),
    "LinearLR-down": ("SGD", lambda S, o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=25)),
    "ConstantLR": ("SGD", lambda S, o: S.ConstantLR(o)),
    "ConstantLR-long": ("SGD", lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=12)),
    "PolynomialLR": ("SGD", lambda S, o: S.PolynomialLR(o, total_iters=30, power=2.0)),
    "SequentialLR": ("SGD", lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=20)], milestones=[5])),
    "SequentialLR-3": ("SGD", lambda S, o: S.SequentialLR(
        o, [S.ConstantLR(o, factor=0.5, total_iters=3), S.ExponentialLR(o, gamma=0.9), S.StepLR(o, 4)],
        milestones=[6, 20])),
    "ChainedScheduler": ("SGD", lambda S, o: S.ChainedScheduler(
        [S.ConstantLR(o, factor=0.2, total_iters=4), S.ExponentialLR(o, gamma=0.95)])),
    "OneCycleLR": ("SGD", lambda S, o: S.OneCycleLR(o, max_lr=1.0, total_steps=STEPS + 1)),
    "OneCycleLR-linear-3phase": ("Adam", lambda S, o: S.OneCycleLR(
        o, max_lr=[0.5, 0.05], epochs=7, steps_per_epoch=6, anneal_strategy="linear", three_phase=True)),
    "OneCycleLR-nomom": ("SGD", lambda S, o: S.OneCycleLR(o, max_lr=0.3, total_steps=60, pct_start=0.5,
                                                          cycle_momentum=False, div_factor=10.0)),
    "CosineAnnealingWarmRestarts": ("SGD", lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=7)),
    "CosineAnnealingWarmRestarts-mult": ("SGD", lambda S, o: S.CosineAnnealingWarmRestarts(
        o, T_0=3, T_mult=2, eta_min=1e-4)),
    "CyclicLR": ("SGD", lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5)),
    "CyclicLR-exp": ("Adam", lambda S, o: S.CyclicLR(o, base_lr=[0.01, 0.001], max_lr=0.1, step_size_up=4,
                                                     step_size_down=6, mode="exp_range", gamma=0.97)),
    "CyclicLR-tri2": ("SGD", lambda S, o: S.CyclicLR(o, 0.001, 0.01, step_size_up=3, mode="triangular2",
                                                     cycle_momentum=False)),
}


def _momentum(group):
    return group["betas"][0] if "betas" in group else group.get("momentum")


def _run(lib, key, steps=STEPS):
    opt_name, factory = SCHEDS[key]
    opt = _opts(lib, opt_name)
    sched = factory(lib.optim.lr_scheduler, opt)
    lrs, moms = [list(sched.get_last_lr())], [[_momentum(g) for g in opt.param_groups]]
    for _ in range(steps):
        opt.step()
        sched.step()
        lrs.append(list(sched.get_last_lr()))
        assert lrs[-1] == [g["lr"] for g in opt.param_groups]
        moms.append([_momentum(g) for g in opt.param_groups])
    return lrs, moms


@pytest.mark.parametrize("key", list(SCHEDS))
def test_lr_sequence_matches_pytorch(key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, their_moms = _run(torch, key)
    ours, our_moms = _run(tocha, key)
    assert len(ours) == STEPS + 1
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15), f"step {i}: {a} != {b}"
    for i, (a, b) in enumerate(zip(our_moms, their_moms)):
        assert a == pytest.approx(b, rel=1e-12), f"momentum at step {i}"
    assert len({tuple(x) for x in ours}) > 1 or key.startswith("Constant")  # the schedule does something


@pytest.mark.parametrize("key", ["StepLR", "MultiStepLR", "CosineAnnealingLR-eta", "SequentialLR", "OneCycleLR",
                                 "CosineAnnealingWarmRestarts-mult", "CyclicLR", "LinearLR-down",
                                 "MultiplicativeLR", "ChainedScheduler"])
def test_state_dict_round_trip(key):
    opt_name, factory = SCHEDS[key]
    opt = _opts(tocha, opt_name)
    sched = factory(toptim.lr_scheduler, opt)
    for _ in range(13):
        opt.step()
        sched.step()
    saved_sched = copy.deepcopy(sched.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    assert "optimizer" not in saved_sched
    expected = []
    for _ in range(15):
        opt.step()
        sched.step()
        expected.append(sched.get_last_lr())
    opt2 = _opts(tocha, opt_name)
    opt2.load_state_dict(saved_opt)
    sched2 = factory(toptim.lr_scheduler, opt2)
    sched2.load_state_dict(saved_sched)
    for g, lr in zip(opt2.param_groups, saved_sched["_last_lr"]):
        g["lr"] = lr
    got = []
    for _ in range(15):
        opt2.step()
        sched2.step()
        got.append(sched2.get_last_lr())
    assert got == expected


def _plateau_run(lib, kw, metrics):
    opt = _opts(lib)
    sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    out = []
    for m in metrics:
        opt.step()
        sched.step(m)
        out.append(list(sched.get_last_lr()) + [sched.num_bad_epochs, sched.cooldown_counter])
    return out, sched


PLATEAU = [
    {},
    {"patience": 2, "factor": 0.5},
    {"mode": "max", "patience": 1, "factor": 0.3, "threshold": 0.01, "threshold_mode": "abs"},
    {"patience": 0, "cooldown": 2, "min_lr": [0.01, 0.015]},
    {"patience": 1, "threshold": 0.05, "min_lr": 1e-3, "eps": 1e-3},
]


@pytest.mark.parametrize("kw", PLATEAU)
def test_reduce_lr_on_plateau_matches_pytorch(kw):
    # a noisy decreasing curve with long plateaus
    metrics = [1.0 / (1 + i // 5) + 0.01 * math.sin(i) if i < 20 else 0.3 for i in range(45)]
    theirs, _ = _plateau_run(torch, kw, metrics)
    ours, sched = _plateau_run(tocha, kw, metrics)
    assert ours == theirs
    assert len({tuple(x[:2]) for x in ours}) > 1
    sd = copy.deepcopy(sched.state_dict())
    sched.load_state_dict(sd)
    assert sched.mode_worse == (math.inf if kw.get("mode", "min") == "min" else -math.inf)


def test_reduce_lr_on_plateau_accepts_tensor_metric():
    opt = _opts(tocha)
    sched = toptim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    sched.step(tocha.tensor(1.0))
    sched.step(tocha.tensor(2.0))
    assert sched.get_last_lr() == pytest.approx([0.01, 0.002])


def test_closed_form_step_with_epoch():
    # step(epoch) jumps with the closed form (deprecated in PyTorch, same values)
    for key, epochs in [("StepLR", [3, 9, 15, 2]), ("ExponentialLR", [4, 10]), ("CosineAnnealingLR", [5, 14, 1]),
                        ("MultiStepLR", [13, 31, 0]), ("LinearLR", [2, 7]), ("PolynomialLR", [10, 29]),
                        ("CosineAnnealingWarmRestarts-mult", [0.5, 4.25, 10, 22.7])]:
        res = []
        for lib in (torch, tocha):
            opt_name, factory = SCHEDS[key]
            opt = _opts(lib, opt_name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sched = factory(lib.optim.lr_scheduler, opt)
                vals = []
                for e in epochs:
                    opt.step()
                    sched.step(e)
                    vals.append(list(sched.get_last_lr()))
            res.append(vals)
        flat = [[v for row in r for v in row] for r in res]
        assert flat[1] == pytest.approx(flat[0], rel=1e-12), key


def test_warns_when_scheduler_steps_before_optimizer():
    opt = _opts(tocha)
    sched = toptim.lr_scheduler.StepLR(opt, 2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()


def test_get_lr_outside_step_warns():
    opt = _opts(tocha)
    sched = toptim.lr_scheduler.ExponentialLR(opt, 0.9)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()


def test_resume_with_last_epoch():
    opt = _opts(tocha)
    with pytest.raises(KeyError, match="initial_lr"):
        toptim.lr_scheduler.StepLR(opt, 3, last_epoch=5)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    s = toptim.lr_scheduler.StepLR(opt, 3, last_epoch=5)
    assert s.last_epoch == 6


@pytest.mark.parametrize("make", [
    lambda S, o: S.ConstantLR(o, factor=1.5),
    lambda S, o: S.LinearLR(o, start_factor=0.0),
    lambda S, o: S.LinearLR(o, end_factor=2.0),
    lambda S, o: S.ReduceLROnPlateau(o, factor=1.0),
    lambda S, o: S.ReduceLROnPlateau(o, mode="up"),
    lambda S, o: S.ReduceLROnPlateau(o, threshold_mode="pct"),
    lambda S, o: S.ReduceLROnPlateau(o, min_lr=[0.1]),
    lambda S, o: S.OneCycleLR(o, max_lr=1.0),
    lambda S, o: S.OneCycleLR(o, max_lr=1.0, total_steps=0),
    lambda S, o: S.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5),
    lambda S, o: S.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"),
    lambda S, o: S.OneCycleLR(o, max_lr=[1.0], total_steps=10),
    lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=0),
    lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0),
    lambda S, o: S.SequentialLR(o, [S.StepLR(o, 2)], milestones=[3]),
    lambda S, o: S.SequentialLR(o, [], milestones=[]),
    lambda S, o: S.LambdaLR(o, [lambda e: 1.0]),
    lambda S, o: S.CyclicLR(o, 0.01, 0.1, mode="sawtooth"),
])
def test_bad_arguments_raise_like_pytorch(make):
    with pytest.raises(ValueError) as theirs:
        make(torch.optim.lr_scheduler, _opts(torch))
    with pytest.raises(ValueError) as ours:
        make(toptim.lr_scheduler, _opts(tocha))
    assert str(ours.value) == str(theirs.value)


def test_non_optimizer_is_rejected():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        toptim.lr_scheduler.StepLR(object(), 3)


def test_onecycle_too_many_steps():
    opt = _opts(tocha)
    sched = toptim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        opt.step()
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        sched.step()
