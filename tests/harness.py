"""Parity harness: one lambda drives both tocha and PyTorch (``fn(m, *tensors)`` with m = the module).

Input specs (see ``make``):
  (2, 3)                  float tensor, standard normal
  Pos((2, 3))             float tensor in [0.5, 2]
  Unit((2, 3))            float tensor in (-0.9, 0.9)
  NC((3, 2))              non-contiguous float tensor (a transposed view) of that shape
  Sliced((4, 3))          non-contiguous float tensor: every other row of a (8, 3) tensor
  Int((5,), hi)           int64 tensor in [0, hi)  (never differentiated)
  Bool((2, 3))            bool tensor
  Fixed(spec)             a tensor input built from ``spec`` that is never differentiated
  Const(value)            passed as-is (numbers, tuples, None ...)
"""

from dataclasses import dataclass, field

import numpy as np
import torch

import tocha


@dataclass
class Pos:
    shape: tuple


@dataclass
class Unit:
    shape: tuple


@dataclass
class NC:
    shape: tuple


@dataclass
class Sliced:
    shape: tuple


@dataclass
class Int:
    shape: tuple
    hi: int = 5


@dataclass
class Bool:
    shape: tuple


@dataclass
class Fixed:
    """A tensor input that is never differentiated (e.g. class weights): wraps another spec."""

    spec: object


@dataclass
class Const:
    value: object


@dataclass
class Case:
    """One parity case: ``fn(m, *inputs)`` for m in (tocha, torch)."""

    fn: object
    specs: list
    grad: bool = True          # compare gradients of float inputs
    gradcheck: bool = True     # float64 finite-difference check
    atol: float = 1e-5
    rtol: float = 1e-4
    dtypes: tuple = ("float32", "float64")
    kwargs: dict = field(default_factory=dict)


def _gen(spec, rng, np_dtype):
    if isinstance(spec, Fixed):
        val, kind = _gen(spec.spec, rng, np_dtype)
        return val, (False if kind is True else kind)
    if isinstance(spec, Pos):
        return rng.uniform(0.5, 2.0, spec.shape).astype(np_dtype), True
    if isinstance(spec, Unit):
        return rng.uniform(-0.9, 0.9, spec.shape).astype(np_dtype), True
    if isinstance(spec, NC):
        base = rng.standard_normal(tuple(reversed(spec.shape))).astype(np_dtype)
        return base, "nc"
    if isinstance(spec, Sliced):
        shp = (spec.shape[0] * 2,) + tuple(spec.shape[1:])
        return rng.standard_normal(shp).astype(np_dtype), "sliced"
    if isinstance(spec, Int):
        return rng.integers(0, spec.hi, spec.shape).astype(np.int64), False
    if isinstance(spec, Bool):
        return rng.random(spec.shape) > 0.5, False
    if isinstance(spec, Const):
        return spec.value, None
    return rng.standard_normal(spec).astype(np_dtype), True


def make(specs, dtype, seed=0, requires_grad=True):
    """Build matching (tocha_inputs, torch_inputs, grad_leaves) for the specs."""
    rng = np.random.default_rng(seed)
    np_dtype = np.float32 if dtype == "float32" else np.float64
    tt, pt, leaves = [], [], []
    for spec in specs:
        val, kind = _gen(spec, rng, np_dtype)
        if kind is None:
            tt.append(val)
            pt.append(val)
            continue
        diff = kind is not False and requires_grad
        a = tocha.tensor(val, requires_grad=diff)
        b = torch.tensor(val, requires_grad=diff)
        if diff:
            leaves.append((a, b))
        if kind == "nc":
            a, b = a.t() if a.ndim == 2 else a.permute(*range(a.ndim - 1, -1, -1)), \
                b.t() if b.ndim == 2 else b.permute(*range(b.ndim - 1, -1, -1))
            assert not a.is_contiguous() or a.numel() <= 1
        elif kind == "sliced":
            a, b = a[::2], b[::2]
        tt.append(a)
        pt.append(b)
    return tt, pt, leaves


def _flat_outputs(out):
    if isinstance(out, (tuple, list)):
        res = []
        for o in out:
            res.extend(_flat_outputs(o))
        return res
    return [out]


def assert_close(a, b, atol, rtol, what=""):
    an = a.detach().numpy() if isinstance(a, tocha.Tensor) else np.asarray(a)
    bn = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert tuple(an.shape) == tuple(bn.shape), f"{what}: shape {an.shape} != torch {bn.shape}"
    if bn.dtype == np.bool_ or np.issubdtype(bn.dtype, np.integer):
        np.testing.assert_array_equal(an, bn, err_msg=what)
    else:
        np.testing.assert_allclose(an.astype(np.float64), bn.astype(np.float64), atol=atol, rtol=rtol,
                                   err_msg=what)


def check_parity(case, dtype):
    """Forward values and gradients (of a random projection of the outputs) vs PyTorch."""
    tt, pt, leaves = make(case.specs, dtype, requires_grad=case.grad)
    out_t = _flat_outputs(case.fn(tocha, *tt))
    out_p = _flat_outputs(case.fn(torch, *pt))
    assert len(out_t) == len(out_p)
    scale = 10 if dtype == "float32" else 1
    for i, (a, b) in enumerate(zip(out_t, out_p)):
        if isinstance(b, torch.Tensor):
            assert a.dtype.name == str(b.dtype).split(".")[-1], f"output {i}: dtype {a.dtype} vs torch {b.dtype}"
        assert_close(a, b, case.atol * scale, case.rtol * scale, f"forward output {i} ({dtype})")
    if not case.grad or not leaves:
        return
    rng = np.random.default_rng(1)
    seeds_t, seeds_p, outs_t, outs_p = [], [], [], []
    for a, b in zip(out_t, out_p):
        if isinstance(b, torch.Tensor) and b.requires_grad:
            s = rng.standard_normal(tuple(b.shape)).astype(np.float32 if dtype == "float32" else np.float64)
            seeds_t.append(tocha.tensor(s))
            seeds_p.append(torch.tensor(s))
            outs_t.append(a)
            outs_p.append(b)
    if not outs_p:
        return
    gp = torch.autograd.grad(outs_p, [b for _, b in leaves], seeds_p, allow_unused=True)
    gt = tocha.autograd.grad(outs_t, [a for a, _ in leaves], seeds_t, allow_unused=True)
    for i, (x, y) in enumerate(zip(gt, gp)):
        if y is None:
            assert x is None or float(x.abs().sum()) == 0, f"grad {i}: tocha has a gradient, torch has none"
            continue
        assert x is not None, f"grad {i}: tocha returned no gradient"
        assert_close(x, y, case.atol * scale, case.rtol * scale, f"gradient of input {i} ({dtype})")


def check_gradcheck(case):
    # finite differences perturb leaf storage directly: use contiguous inputs
    specs = [s.shape if isinstance(s, (NC, Sliced)) else s for s in case.specs]
    tt, _, leaves = make(specs, "float64")
    assert leaves, "gradcheck case without differentiable inputs"
    tocha.autograd.gradcheck(lambda *xs: case.fn(tocha, *xs), tt, eps=1e-6, atol=1e-5, rtol=1e-3)


def subprocess_env(**extra):
    """Environment for a child Python that must import the same tocha as this process (the installed
    package in CI, the source tree in a developer build) and the test helpers."""
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(tocha.__file__)))
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, here, os.environ.get("PYTHONPATH", "")) if p)
    return env


def at_thread_counts(fn, counts=(1, 2)):
    """[fn() run with tocha at each thread count in ``counts``], restoring the caller's thread count."""
    prev = tocha.get_num_threads()
    try:
        out = []
        for nt in counts:
            tocha.set_num_threads(nt)
            out.append(fn())
        return out
    finally:
        tocha.set_num_threads(prev)
