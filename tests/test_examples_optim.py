"""Smoke tests: the optimisation examples run end to end with a tiny budget and print their tables."""

import importlib.util
import math
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gradient_descent_variants_smoke(capsys):
    res = _load("gradient_descent_variants").main(["--epochs", "2", "--n", "64", "--batch", "16"])
    out = capsys.readouterr().out
    assert "full-batch GD" in out and "SGD (batch 1)" in out and "mini-batch (B=16)" in out
    # updates per epoch: 1 (full batch), m (batch 1), m/B (mini-batch)
    assert [r["updates"] for r in res.values()] == [2, 128, 8]
    assert all(math.isfinite(r["loss"]) and 0 <= r["accuracy"] <= 1 for r in res.values())


def test_vanishing_gradients_smoke(capsys):
    norms, results = _load("vanishing_gradients").main(["--depth", "6", "--width", "16", "--steps", "3",
                                                        "--n", "128"])
    out = capsys.readouterr().out
    assert "sigmoid + N(0,1)" in out and "ReLU + Kaiming" in out
    assert all(len(v) == 7 for v in norms.values())

    def ratio(label):
        return norms[label][0] / norms[label][-1]

    # the lesson, measured: the deep sigmoid net's first layer gets a far smaller share of the gradient
    assert ratio("sigmoid + N(0,1)") < 0.1 * ratio("ReLU + Kaiming")
    assert ratio("sigmoid + N(0,1)") < ratio("tanh + Xavier(5/3)")
    assert all(math.isfinite(loss) for loss, _ in results.values())


@pytest.mark.parametrize("script", ["gradient_descent_variants", "vanishing_gradients"])
def test_examples_have_cli_help(script):
    with pytest.raises(SystemExit) as e:
        _load(script).main(["--help"])
    assert e.value.code == 0
