"""Accuracy of tocha's vectorised float32 math (csrc/cpu/vecmath*.cpp) in ulps against float64 NumPy.

Both the AVX2 path and the portable generic path are measured: the ISA is chosen once per process, so each
path runs in a subprocess (``TOCHA_CPU_ISA=generic`` forces the generic one). Inputs cover the whole float32
range by random bit patterns, plus 0, -0, +-inf, NaN, denormals and the overflow/underflow edges.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from harness import subprocess_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

F32_MAX = float(np.finfo(np.float32).max)
SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, -1e-40, 1.17549435e-38,
                     1e-30, -1e-30, 1e30, -1e30, F32_MAX, -F32_MAX, 88.72283, 88.7229, 89.0, -87.33654,
                     -87.34, -103.2, -103.97, -104.0, -110.0, 0.625, -0.625, 0.62499994, 9.0, -9.0,
                     20.0, 20.000002, 19.999998, 1.0, -1.0, 0.5, 2.0], dtype=np.float32)


def _all_floats(n, rng, positive=False):
    """Random float32 bit patterns (every exponent equally likely), finite only."""
    bits = rng.integers(0, 0x7F800000, n, dtype=np.uint32)
    x = bits.view(np.float32)
    if not positive:
        x = np.where(rng.random(n) < 0.5, -x, x).astype(np.float32)
    return x


def _inputs(name, rng):
    n = 1 << 19
    if name == "exp":
        parts = [rng.uniform(-104.5, 89.5, n), rng.uniform(-1, 1, n), _all_floats(n // 4, rng)]
    elif name == "log":
        parts = [_all_floats(n, rng, positive=True), rng.uniform(0.5, 2.0, n), -_all_floats(1000, rng, True)]
    elif name in ERF_FAMILY:
        # a dense grid through both branches and both tails (erf saturates near 4, GELU's negative tail
        # underflows near -14), the branch switch points, plus random bit patterns
        parts = [np.linspace(-20, 20, n), rng.uniform(-1.5, 1.5, n // 2), _all_floats(n // 4, rng),
                 np.nextafter(np.float32([0.5, 1.0, 1.4142135, -0.7071068, -1.4142135]), np.float32(np.inf)),
                 np.float32([0.5, 1.0, 1.4142135, 0.70710677, -0.70710677, -0.7071068, -0.7518])]
    else:
        parts = [_all_floats(n, rng), rng.uniform(-12, 12, n), rng.uniform(-1, 1, n)]
    return np.concatenate([np.asarray(p, dtype=np.float32) for p in parts] + [SPECIALS])


def _sigmoid64(x):
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))


def _softplus64(x):
    return np.where(x > 20, x, np.logaddexp(0.0, x))


_erf64 = np.frompyfunc(math.erf, 1, 1)
_erfc64 = np.frompyfunc(math.erfc, 1, 1)


def _phi64(x):
    """Standard normal CDF without cancellation in either tail."""
    return 0.5 * _erfc64(-x / math.sqrt(2)).astype(np.float64)


def _gelu_grad64(x):
    return _phi64(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _gelu_tanh_grad64(x):
    k, c = math.sqrt(2 / math.pi), 0.044715
    s = _sigmoid64(2 * k * (x + c * x**3))
    return s + x * s * (1 - s) * 2 * k * (1 + 3 * c * x * x)


ERF_FAMILY = ("erf", "gelu", "gelu_backward", "gelu_tanh_backward")

REFS = {
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "sigmoid": _sigmoid64,
    "silu": lambda x: x * _sigmoid64(x),
    "softplus": _softplus64,
    # = 0.5 x (1 + tanh(u)), written without the cancellation that float64 would suffer for x << 0
    "gelu_tanh": lambda x: x * _sigmoid64(2 * np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)),
    "mish": lambda x: x * np.tanh(_softplus64(x)),
    "erf": lambda x: _erf64(x).astype(np.float64),
    "gelu": lambda x: x * _phi64(x),
    "gelu_backward": _gelu_grad64,
    "gelu_tanh_backward": _gelu_tanh_grad64,
}

# f' = a + b with terms of opposite signs (a zero near x = -0.75): errors are measured in ulps of the larger
# term, the scale at which the sum is computed (any float32 evaluation loses digits to that cancellation).
GRAD_SCALE = {
    "gelu_backward": lambda x: np.maximum(_phi64(x), np.abs(x) * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)),
    "gelu_tanh_backward": lambda x: np.maximum(_sigmoid64(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)),
                                               np.abs(_gelu_tanh_grad64(x) - _sigmoid64(
                                                   2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
}


COMPOSITES = ("silu", "gelu_tanh", "mish", "gelu", "gelu_backward", "gelu_tanh_backward")


def _tocha_fn(name):
    import tocha
    import tocha.nn.functional as F

    def grad_kernel(code):
        # the fused backward kernel with an incoming gradient of 1: f'(x)
        return lambda t: tocha._ops._wrap(tocha._C.binary(code, tocha.ones_like(t)._a, t._a))

    return {
        "erf": tocha.erf, "gelu": tocha._ops.gelu_,
        "gelu_backward": grad_kernel(tocha._ops.B_GELU_GRAD),
        "gelu_tanh_backward": grad_kernel(tocha._ops.B_GELU_TANH_GRAD),
        "exp": tocha.exp, "log": tocha.log, "tanh": tocha.tanh, "sigmoid": tocha.sigmoid,
        "silu": F.silu, "mish": F.mish,
        # F.softplus / F.gelu belong to the nn family; their kernels are these registered ops
        "softplus": tocha._ops.softplus_, "gelu_tanh": tocha._ops.gelu_tanh_,
    }[name]


def measure():
    """Max ulp error per function plus special-value mismatches (run in a subprocess per ISA)."""
    import tocha

    rng = np.random.default_rng(0)
    out = {"isa": tocha._C.vec_isa(), "funcs": {}}
    for name, ref in REFS.items():
        x = _inputs(name, rng)
        got = _tocha_fn(name)(tocha.from_numpy(x)).numpy().astype(np.float64)
        with np.errstate(all="ignore"):
            want64 = ref(x.astype(np.float64))
        with np.errstate(over="ignore"):
            want32 = want64.astype(np.float32)
        special = ~np.isfinite(want32)
        # specials must match exactly (inf with sign, NaN where the reference is NaN)
        bad = special & ~((got == want32) | (np.isnan(got) & np.isnan(want32)))
        # no NaN/inf where the reference is a finite float32
        bad |= ~special & ~np.isfinite(got)
        fin = ~special & np.isfinite(got)
        with np.errstate(over="ignore"):
            mag = np.abs(want64[fin])
            if name in GRAD_SCALE:
                mag = np.maximum(mag, GRAD_SCALE[name](x[fin].astype(np.float64)))
            ulp = np.spacing(mag.astype(np.float32)).astype(np.float64)
        if name in COMPOSITES:
            # x * f(.) with f(.) denormal (x << -87) carries f's absolute error 2^-149 times |x| (so does
            # PyTorch's formula): the bound is in units of max(ulp(result), |x| 2^-149)
            ulp = np.maximum(ulp, np.abs(x[fin].astype(np.float64)) * 2.0**-149)
        err = np.abs(got[fin] - want64[fin]) / ulp
        if name in ("gelu_tanh", "gelu_tanh_backward"):
            # x sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3): rounding u in float32 is amplified by |2u|
            # (the condition number) -- inherent to evaluating the formula in float32 (PyTorch included)
            xf = x[fin].astype(np.float64)
            err = err / np.maximum(1.0, np.abs(2 * np.sqrt(2 / np.pi) * (xf + 0.044715 * xf**3)) / 2)
        i = int(np.argmax(err))
        out["funcs"][name] = {"max_ulp": float(err[i]), "worst_x": float(x[fin][i]),
                              "n_bad": int(bad.sum()), "bad_x": [float(v) for v in x[bad][:5]]}
    return out


def _run(isa):
    env = subprocess_env()
    env.pop("TOCHA_CPU_ISA", None)
    if isa in ("generic", "avx2"):  # avx2: forces the AVX2 build on an AVX-512 machine
        env["TOCHA_CPU_ISA"] = isa
    code = "import json, test_vecmath as t; print(json.dumps(t.measure()))"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


_CACHE = {}


def _result(isa):
    if isa not in _CACHE:
        _CACHE[isa] = _run(isa)
    return _CACHE[isa]


# Documented bounds (vecmath.h): exp/log <= 2 ulp, tanh/sigmoid a few ulp; composites looser.
BOUNDS = {"exp": 2, "log": 2, "tanh": 3, "sigmoid": 3, "silu": 4, "softplus": 4, "gelu_tanh": 8, "mish": 8,
          "erf": 2, "gelu": 7, "gelu_backward": 7, "gelu_tanh_backward": 8}


@pytest.mark.parametrize("isa", ["default", "avx2", "generic"])
@pytest.mark.parametrize("name", list(REFS))
def test_ulp_error(isa, name):
    res = _result(isa)
    if isa == "generic":
        assert res["isa"] == "generic"
    f = res["funcs"][name]
    assert f["n_bad"] == 0, f"{name} ({res['isa']}): wrong special values at {f['bad_x']}"
    assert f["max_ulp"] <= BOUNDS[name], \
        f"{name} ({res['isa']}): {f['max_ulp']:.2f} ulp at x={f['worst_x']!r}"


def test_special_values_exact():
    import tocha

    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 1e-45], dtype=np.float32)
    t = tocha.from_numpy(x)
    e = tocha.exp(t).numpy()
    assert e[0] == 1 and e[1] == 1 and e[2] == np.inf and e[3] == 0 and np.isnan(e[4])
    lg = tocha.log(t).numpy()
    assert lg[0] == -np.inf and lg[1] == -np.inf and lg[2] == np.inf and np.isnan(lg[3]) and np.isnan(lg[4])
    assert np.isnan(lg[5]) and lg[6] == np.float32(np.log(np.float64(np.float32(1e-45))))
    th = tocha.tanh(t).numpy()
    assert th[2] == 1 and th[3] == -1 and np.isnan(th[4]) and np.signbit(th[1])
    sg = tocha.sigmoid(t).numpy()
    assert sg[0] == 0.5 and sg[2] == 1 and sg[3] == 0 and np.isnan(sg[4])
    r = tocha.relu(t).numpy()
    assert r[2] == np.inf and r[3] == 0 and np.isnan(r[4]) and r[5] == 0


def test_isa_switch_reaches_generic():
    assert _result("generic")["isa"] == "generic"


@pytest.mark.parametrize("name", ["exp", "log", "tanh", "sigmoid", "softplus", "mish", "gelu"])
def test_result_independent_of_neighbours(name):
    """A lane's result must not depend on the other lanes of its SIMD vector or on its position: kernels
    with a rarely-taken special-value branch (log: denormals, zero, negatives, inf, NaN) must give the
    normal lanes the same bits on both paths, so any split of an array (threads, chunks) is identical."""
    import tocha

    fn = {"softplus": tocha._ops.softplus_, "mish": tocha._ops.mish, "gelu": tocha._ops.gelu_}.get(
        name, getattr(tocha, name, None))
    rng = np.random.default_rng(7)
    base = (rng.random(64) * 4 + 0.01).astype(np.float32)  # positive normal values: the fast path
    clean = fn(tocha.from_numpy(base)).numpy()
    for pos in (0, 3, 7, 8, 13, 63):
        for special in (0.0, -1.0, 1e-40, np.inf, np.nan):
            x = base.copy()
            x[pos] = special
            got = fn(tocha.from_numpy(x)).numpy()
            keep = np.arange(64) != pos
            np.testing.assert_array_equal(got[keep], clean[keep], err_msg=f"{name}: special {special} at {pos}")
    # offset views: the same values at a different alignment give the same bits
    big = np.concatenate([np.zeros(5, np.float32), base])
    np.testing.assert_array_equal(fn(tocha.from_numpy(big))[5:].numpy(), clean)


def dump(path):
    """Every vector function (and relu, the IEEE binary ops) on one mixed input set, saved for comparing the
    SIMD builds bitwise (run in a subprocess per ISA)."""
    import tocha

    rng = np.random.default_rng(11)
    x = np.concatenate([_all_floats(1 << 16, rng), SPECIALS, (rng.standard_normal(1 << 16) * 6),
                        rng.uniform(-110, 100, 1 << 14)]).astype(np.float32)
    x = x[: len(x) - 5]  # an odd length: the last vector is a tail
    y = np.roll(x, 7)
    t, u = tocha.from_numpy(x), tocha.from_numpy(y)
    out = {name: _tocha_fn(name)(t).numpy() for name in REFS}
    out["relu"] = tocha.relu(t).numpy()
    for op in ("add", "sub", "mul", "div", "maximum", "minimum"):
        out[op] = getattr(tocha, op)(t, u).numpy()
    np.savez(path, isa=tocha._C.vec_isa(), **out)


def _dump_sub(isa, path):
    env = subprocess_env()
    env.pop("TOCHA_CPU_ISA", None)
    if isa != "default":
        env["TOCHA_CPU_ISA"] = isa
    code = f"import test_vecmath as t; t.dump({str(path)!r})"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr
    return np.load(path)


def test_avx512_and_avx2_builds_bitwise_equal(tmp_path):
    # Same IEEE operations per lane on both widths (vecmath_simd.h): every element must match bit for bit.
    a = _dump_sub("default", tmp_path / "default.npz")
    if str(a["isa"]) != "avx512":
        pytest.skip(f"this CPU runs the {a['isa']} build (no AVX-512): nothing to compare")
    b = _dump_sub("avx2", tmp_path / "avx2.npz")
    assert str(b["isa"]) == "avx2"
    for name in a.files:
        if name != "isa":
            np.testing.assert_array_equal(a[name].view(np.uint32), b[name].view(np.uint32), err_msg=name)
