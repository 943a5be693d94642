"""Every registered op: forward+backward parity vs PyTorch (float32, float64) and float64 gradcheck."""

import pytest

import tocha
import tocha.nn  # noqa: F401  (registers the nn.functional ops)
from harness import check_gradcheck, check_parity
from opinfo import all_cases

CASES = all_cases()
PARITY = [(name, i, dt) for name, lst in CASES.items() for i, c in enumerate(lst) for dt in c.dtypes]
GRADCHECK = [(name, i) for name, lst in CASES.items() for i, c in enumerate(lst) if c.grad and c.gradcheck]


def test_every_registered_op_has_cases():
    missing = sorted(set(tocha.OPS) - set(CASES))
    assert not missing, f"registered ops without parity cases: {missing}"
    unknown = sorted(set(CASES) - set(tocha.OPS))
    assert not unknown, f"cases for ops that are not registered: {unknown}"


def test_every_differentiable_op_has_gradcheck():
    lacking = [n for n, fn in tocha.OPS.items()
               if getattr(fn, "_differentiable", True) and not any(c.grad and c.gradcheck for c in CASES[n])]
    assert not lacking, f"differentiable ops without a float64 gradcheck case: {lacking}"


@pytest.mark.parametrize("name,i,dtype", PARITY, ids=[f"{n}-{i}-{d}" for n, i, d in PARITY])
def test_parity(name, i, dtype):
    check_parity(CASES[name][i], dtype)


@pytest.mark.parametrize("name,i", GRADCHECK, ids=[f"{n}-{i}" for n, i in GRADCHECK])
def test_gradcheck(name, i):
    check_gradcheck(CASES[name][i])
