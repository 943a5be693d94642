"""CUDA backend tests.

Two kinds:
* checks that run on any machine: the build script, and how a CPU-only machine reports CUDA
  (``is_available()`` False, clear RuntimeErrors, never a crash) for whichever build is imported;
* GPU tests (``gpu`` marker below: skipped only when ``tocha.cuda.is_available()`` is False): cross-device
  parity of every CUDA kernel against the CPU kernel on the same inputs, the shared Philox stream,
  and the caching allocator counters. They call the kernels through ``_C.cuda_*`` and ``_C.to_device``.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tocha
from tocha import _C
from tocha._ops import (B_ADD, B_DIV, B_EQ, B_GT, B_MAXIMUM, B_MINIMUM, B_MUL, B_POW, B_RELU_GRAD, B_SUB,
                        B_TANH_GRAD, R_AMAX, R_MAX, R_MEAN, R_MIN, R_SUM, U_ABS, U_EXP, U_LOG, U_NEG, U_RELU,
                        U_ROUND, U_SIGMOID, U_SIGN, U_SQRT, U_TANH, U_TAN)

ROOT = Path(__file__).resolve().parents[1]
BUILT_WITH_CUDA = bool(getattr(_C, "has_cuda", False))
gpu = pytest.mark.skipif(not tocha.cuda.is_available(), reason="needs a CUDA GPU (tocha.cuda.is_available() is False)")

CPU, CUDA = 0, 1
F32, F64 = 4, 5  # DType codes (csrc/core/array.h)


def _nvcc():
    found = shutil.which("nvcc")
    if found:
        return found
    for d in sorted(Path("/usr/local").glob("cuda*/bin")):
        if (d / "nvcc").exists():
            return str(d / "nvcc")
    return None


# ---------------------------------------------------------------- any machine

def test_build_script_skips_cleanly_without_nvcc(tmp_path):
    # a PATH with no nvcc and no /usr/local/cuda* lookup hit is simulated by a fake root-less PATH
    env = dict(os.environ, PATH=str(tmp_path))
    script = (ROOT / "scripts" / "check_cuda_build.sh").read_text()
    fake = tmp_path / "check.sh"
    fake.write_text(script.replace("/usr/local/cuda/bin /usr/local/cuda-*/bin", str(tmp_path / "none")))
    r = subprocess.run(["/bin/bash", str(fake)], env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "SKIP - nvcc not found" in r.stdout


def test_build_script_compiles_and_imports_with_nvcc():
    # where nvcc exists: builds (incrementally, build/cuda-check; the first build takes minutes on a busy
    # 2-core machine) and runs the script's import checks; without nvcc the script must say it skipped
    env = dict(os.environ, PYTHON=sys.executable)
    r = subprocess.run(["bash", str(ROOT / "scripts" / "check_cuda_build.sh")], env=env, capture_output=True,
                       text=True, cwd=ROOT, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    if _nvcc() is None:
        assert "SKIP - nvcc not found" in r.stdout
    else:
        assert "check_cuda_build: import ok" in r.stdout and "check_cuda_build: OK" in r.stdout


def test_cpu_only_machine_reports_no_cuda():
    if tocha.cuda.is_available():
        assert tocha.cuda.device_count() > 0
        return
    assert tocha.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match="built without CUDA" if not BUILT_WITH_CUDA else "no CUDA GPU is visible"):
        tocha.ones(3).to("cuda")
    with pytest.raises(RuntimeError, match="CUDA"):
        tocha.ones(3).cuda()
    tocha.cuda.synchronize()  # a no-op, never raises without a GPU
    assert tocha.cuda.memory_allocated() == 0 and tocha.cuda.max_memory_allocated() == 0
    tocha.cuda.empty_cache()


def test_cuda_entry_points_match_the_build():
    # CUDA-build specifics (device count without a driver, allocator size classes, to_device errors) are
    # also checked by scripts/check_cuda_build.sh against its own CUDA build
    if not BUILT_WITH_CUDA:
        assert not hasattr(_C, "to_device") and not hasattr(_C, "cuda_device_count")
        return
    n = _C.cuda_device_count()  # never raises, driver or not
    assert n >= 0 and isinstance(_C.cuda_device_status(), str)
    assert _C.cuda_size_class(0) == 512 and _C.cuda_size_class(513) == 1024
    assert _C.cuda_size_class((1 << 20) + 1) == 2 << 20 and _C.cuda_size_class(3 << 20) == 4 << 20
    with pytest.raises(ValueError, match="invalid device type"):
        _C.to_device(tocha.ones(3)._a, 7, 0)
    if n == 0:
        with pytest.raises(RuntimeError, match=r"cuda:0 is not available"):
            _C.to_device(tocha.ones(3)._a, CUDA, 0)
        with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
            _C.cuda_self_test()


# ---------------------------------------------------------------- GPU

def dev(x):
    return _C.to_device(tocha.tensor(np.ascontiguousarray(x))._a, CUDA, 0)


def host(a):
    out = _C.to_device(a, CPU, 0)
    assert out.device_type == CPU
    return np.asarray(out)


def cpu(x):
    return tocha.tensor(np.ascontiguousarray(x))._a


def _rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@gpu
def test_self_test_passes():
    report = _C.cuda_self_test()
    assert "FAIL" not in report and "ok" in report


@gpu
def test_round_trip_and_views():
    x = _rand((5, 7), np.float64)
    d = dev(x)
    assert d.device_type == CUDA and d.device_index == 0
    np.testing.assert_array_equal(host(d), x)
    np.testing.assert_array_equal(host(d.transpose(0, 1)), x.T)  # strided device -> host
    np.testing.assert_array_equal(host(d.slice(1, 1, 7, 2)), x[:, 1:7:2])
    clone = _C.to_device(d, CUDA, 0)
    assert not clone.same_storage(d)
    np.testing.assert_array_equal(host(clone), x)


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 7, 1000, 100_001])
def test_philox_stream_matches_cpu(dtype, n):
    dt = F32 if dtype == np.float32 else F64
    for fill, args in (("uniform_", (-1.5, 2.0)), ("normal_", (0.5, 3.0))):
        _C.set_rng_state(1234, 17)
        h = _C.empty([n], dt)
        getattr(_C, fill)(h, *args)
        after_cpu = _C.get_rng_state()
        _C.set_rng_state(1234, 17)
        d = _C.to_device(_C.empty([n], dt), CUDA, 0)
        getattr(_C, "cuda_" + fill)(d, *args)
        assert _C.get_rng_state() == after_cpu  # the offset advances by ceil(n/2) on both devices
        if fill == "uniform_":
            np.testing.assert_array_equal(host(d), np.asarray(h))  # bitwise
        else:  # device log/cos may differ from glibc by an ulp
            np.testing.assert_allclose(host(d), np.asarray(h), rtol=1e-6 if dtype == np.float32 else 1e-13, atol=1e-6)


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [U_NEG, U_ABS, U_EXP, U_LOG, U_SQRT, U_TANH, U_SIGMOID, U_RELU, U_SIGN, U_ROUND])
def test_unary_matches_cpu(op, dtype):
    x = _rand((33, 65), dtype)
    if op in (U_LOG, U_SQRT):
        x = np.abs(x) + 0.1
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(host(_C.cuda_unary(op, dev(x))), np.asarray(_C.unary(op, cpu(x))), rtol=tol, atol=tol)
    # strided input
    np.testing.assert_allclose(host(_C.cuda_unary(op, dev(x).transpose(0, 1))), np.asarray(_C.unary(op, cpu(x.T))),
                               rtol=tol, atol=tol)


@gpu
def test_unary_unsupported_op_raises():
    with pytest.raises(RuntimeError, match="not implemented on CUDA"):
        _C.cuda_unary(U_TAN, dev(np.ones(3, np.float32)))


@gpu
@pytest.mark.parametrize("op", [B_ADD, B_SUB, B_MUL, B_DIV, B_MAXIMUM, B_MINIMUM, B_POW, B_EQ, B_GT, B_RELU_GRAD,
                                B_TANH_GRAD])
@pytest.mark.parametrize("shapes", [((4, 5), (4, 5)), ((4, 1, 3), (5, 1)), ((6,), (2, 3, 6))])
def test_binary_matches_cpu_with_broadcast(op, shapes):
    a, b = _rand(shapes[0], np.float32, 1), _rand(shapes[1], np.float32, 2)
    if op == B_POW:
        a = np.abs(a) + 0.5
    got, want = host(_C.cuda_binary(op, dev(a), dev(b))), np.asarray(_C.binary(op, cpu(a), cpu(b)))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@gpu
def test_binary_device_mismatch_names_both_devices():
    with pytest.raises(RuntimeError, match="CUDA tensor"):
        _C.cuda_binary(B_ADD, dev(np.ones(3, np.float32)), cpu(np.ones(3, np.float32)))


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [R_SUM, R_MEAN, R_AMAX, R_MIN])
@pytest.mark.parametrize("dims,keepdim", [([], False), ([0], False), ([1], True), ([0, 2], False), ([-1], True)])
def test_reduce_matches_cpu(op, dtype, dims, keepdim):
    x = _rand((7, 33, 129), dtype)
    got = host(_C.cuda_reduce(op, dev(x), dims, keepdim, None))
    want = np.asarray(_C.reduce(op, cpu(x), dims, keepdim, None))
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@gpu
def test_reduce_long_row_two_pass_is_deterministic():
    x = _rand((3_000_001,), np.float32)
    d = dev(x)
    first = host(_C.cuda_reduce(R_SUM, d, [], False, None))
    for _ in range(3):
        np.testing.assert_array_equal(host(_C.cuda_reduce(R_SUM, d, [], False, None)), first)
    np.testing.assert_allclose(first, x.astype(np.float64).sum(), rtol=1e-4)
    np.testing.assert_array_equal(host(_C.cuda_reduce(R_MAX, d, [], False, None)), x.max())


@gpu
def test_reduce_int_sum_promotes_to_int64():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    got = host(_C.cuda_reduce(R_SUM, dev(x), [1], False, None))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, x.sum(1))


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_fwd_bwd_match_cpu(dtype, log, dim):
    x, g = _rand((9, 17, 1030), dtype, 3), _rand((9, 17, 1030), dtype, 4)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    y_d = _C.cuda_softmax(dev(x), dim, log)
    y_c = _C.softmax(cpu(x), dim, log)
    np.testing.assert_allclose(host(y_d), np.asarray(y_c), rtol=tol, atol=tol)
    gx_d = _C.cuda_softmax_backward(dev(g), y_d, dim, log)
    gx_c = _C.softmax_backward(cpu(g), y_c, dim, log)
    np.testing.assert_allclose(host(gx_d), np.asarray(gx_c), rtol=tol, atol=tol)


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_cross_entropy_matches_cpu(dtype, weighted, ls):
    N, C = 64, 10
    x = _rand((N, C), dtype, 5)
    t = np.random.default_rng(6).integers(0, C, N).astype(np.int64)
    t[3] = -100  # ignored
    w = np.abs(_rand((C,), dtype, 7)) + 0.1 if weighted else None
    tol = 1e-5 if dtype == np.float32 else 1e-12
    loss_d, lsm_d = _C.cuda_cross_entropy_forward(dev(x), dev(t), -100, dev(w) if weighted else None, ls)
    loss_c, lsm_c = _C.cross_entropy_forward(cpu(x), cpu(t), -100, cpu(w) if weighted else None, ls)
    np.testing.assert_allclose(host(loss_d), np.asarray(loss_c), rtol=tol, atol=tol)
    g = _rand((N,), dtype, 8)
    gd = _C.cuda_cross_entropy_backward(dev(g), lsm_d, dev(t), -100, dev(w) if weighted else None, ls)
    gc = _C.cross_entropy_backward(cpu(g), lsm_c, cpu(t), -100, cpu(w) if weighted else None, ls)
    np.testing.assert_allclose(host(gd), np.asarray(gc), rtol=tol, atol=tol)


@gpu
def test_cross_entropy_bad_target_raises_index_error():
    with pytest.raises(IndexError, match="out of bounds"):
        _C.cuda_cross_entropy_forward(dev(np.zeros((2, 3), np.float32)), dev(np.array([0, 3])), -100, None, 0.0)


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mkn", [(1, 1, 1), (128, 128, 8), (129, 257, 65), (3, 1000, 2), (500, 3, 700), (64, 64, 0)])
@pytest.mark.parametrize("trans", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_cpu(dtype, mkn, trans):
    M, K, N = mkn[0], mkn[2], mkn[1]
    a, b = _rand((M, K), dtype, 9), _rand((K, N), dtype, 10)
    da = dev(a.T).transpose(0, 1) if trans[0] else dev(a)  # column-major operand through strides
    db = dev(b.T).transpose(0, 1) if trans[1] else dev(b)
    got = host(_C.cuda_matmul(da, db))
    want = np.asarray(_C.matmul(cpu(a), cpu(b)))
    tol = 1e-4 * max(1, K) ** 0.5 if dtype == np.float32 else 1e-11 * max(1, K)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@gpu
def test_gemm_shape_mismatch():
    with pytest.raises(ValueError, match="cannot be multiplied"):
        _C.cuda_matmul(dev(np.ones((2, 3), np.float32)), dev(np.ones((4, 2), np.float32)))


@gpu
def test_allocator_counters_and_cache_reuse():
    _C.cuda_synchronize()
    _C.cuda_empty_cache()
    base = tocha.cuda.memory_allocated()
    tocha.cuda.reset_peak_memory_stats()
    a = dev(np.ones(1000, np.float32))  # 4000 B -> 4096 B class
    assert tocha.cuda.memory_allocated() == base + 4096
    ptr = a.storage_ptr
    reserved = tocha.cuda.memory_reserved()
    del a
    assert tocha.cuda.memory_allocated() == base
    assert tocha.cuda.max_memory_allocated() >= base + 4096
    b = dev(np.ones(900, np.float32))  # same class: served from the free list
    assert b.storage_ptr == ptr and tocha.cuda.memory_reserved() == reserved
    del b
    tocha.cuda.empty_cache()
    assert tocha.cuda.memory_reserved() == reserved - 4096


@gpu
def test_fill_and_cast_copy():
    d = _C.to_device(_C.empty([4, 6], F32), CUDA, 0)
    _C.cuda_fill_(d.slice(1, 0, 6, 2), 2.5)
    _C.cuda_fill_(d.slice(1, 1, 6, 2), -1.0)
    np.testing.assert_array_equal(host(d), np.tile([2.5, -1.0], (4, 3)).astype(np.float32))
    e = _C.to_device(_C.empty([4, 6], F64), CUDA, 0)
    _C.cuda_copy_(e, d)
    np.testing.assert_array_equal(host(e), host(d).astype(np.float64))


# ---------------------------------------------------------------- device wiring: any machine

BIND_CUDA = (ROOT / "csrc" / "bindings" / "bind_cuda.cpp").read_text()
KERNELS_CU = (ROOT / "csrc" / "cuda" / "kernels.cu").read_text()


def _declared_cuda_bindings():
    import re

    return set(re.findall(r'm\.def\(\s*"(\w+)"', BIND_CUDA))


def _supported_codes(fn, prefix):
    """Op codes listed in kernels.cu's ``<fn>_supported`` switch, mapped to tocha._ops constants."""
    import re

    from tocha import _ops

    body = KERNELS_CU.split(f"bool {fn}_supported")[1].split("\n}\n")[0]
    codes = set()
    for name in re.findall(r"::(\w+):", body):
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name.replace("FromOut", "")).upper()
        codes.add(getattr(_ops, prefix + snake))
    return codes


def test_dispatch_table_names_declared_cuda_bindings():
    import tocha.nn.functional  # noqa: F401  (registers the nn ops)
    from tocha import _dispatch

    declared = _declared_cuda_bindings()
    for cpu_name, cuda_names in _dispatch.CUDA_KERNELS.items():
        assert hasattr(_C, cpu_name), f"{cpu_name} is not a _C kernel"
        for b in cuda_names:
            assert b in declared, f"{cpu_name} dispatches to {b}, which bind_cuda.cpp does not declare"
    if BUILT_WITH_CUDA:
        for b in declared:
            assert hasattr(_C, b), b
    for name in _dispatch.CUDA_OPS:
        assert name in tocha.OPS or hasattr(tocha, name), f"CUDA_OPS lists unknown op {name}"


def test_dispatch_op_codes_match_the_cuda_kernels():
    from tocha import _dispatch, _ops

    assert _dispatch.CUDA_UNARY == _supported_codes("unary", "U_")
    compare = {_ops.B_EQ, _ops.B_NE, _ops.B_LT, _ops.B_LE, _ops.B_GT, _ops.B_GE}
    assert _dispatch.CUDA_BINARY == _supported_codes("binary", "B_") | compare
    assert _dispatch.CUDA_REDUCE == {_ops.R_SUM, _ops.R_MEAN, _ops.R_MAX, _ops.R_MIN, _ops.R_AMAX, _ops.R_AMIN}


def test_cpu_build_calls_kernels_without_a_dispatch_layer():
    from tocha import _dispatch, _ops

    if BUILT_WITH_CUDA:
        assert _dispatch.K is not _C and _dispatch.K.index_select is _C.index_select  # unwired: direct
    else:
        assert _dispatch.K is _C and _ops._K is _C  # zero per-op overhead in the default build


_NO_CUDA = "built without CUDA" if not BUILT_WITH_CUDA else "no CUDA GPU is visible"


@pytest.mark.skipif(tocha.cuda.is_available(), reason="checks the no-GPU errors")
@pytest.mark.parametrize("make", [
    lambda d: tocha.tensor([1.0, 2.0], device=d), lambda d: tocha.zeros(2, 3, device=d),
    lambda d: tocha.ones(2, device=d), lambda d: tocha.empty(2, device=d), lambda d: tocha.full((2,), 3.0, device=d),
    lambda d: tocha.rand(2, device=d), lambda d: tocha.randn(2, device=d), lambda d: tocha.arange(5, device=d),
    lambda d: tocha.linspace(0, 1, 5, device=d), lambda d: tocha.eye(3, device=d),
    lambda d: tocha.randint(0, 5, (3,), device=d), lambda d: tocha.randperm(4, device=d),
    lambda d: tocha.zeros_like(tocha.ones(2), device=d), lambda d: tocha.ones_like(tocha.ones(2), device=d),
    lambda d: tocha.full_like(tocha.ones(2), 2.0, device=d), lambda d: tocha.empty_like(tocha.ones(2), device=d),
    lambda d: tocha.rand_like(tocha.ones(2), device=d), lambda d: tocha.randn_like(tocha.ones(2), device=d),
    lambda d: tocha.ones(2).new_zeros(3, device=d), lambda d: tocha.as_tensor(np.ones(2), device=d),
    lambda d: tocha.ones(3).to(d), lambda d: tocha.ones(3).to(device=d), lambda d: tocha.ones(3).to(d, tocha.float64),
    lambda d: tocha.ones(3).cuda(), lambda d: tocha.nn.Linear(2, 3).to(d), lambda d: tocha.nn.Linear(2, 3).cuda(),
])
@pytest.mark.parametrize("dev", ["cuda", "cuda:0", tocha.device("cuda"), 0])
def test_cuda_requests_raise_the_clear_error_without_a_gpu(make, dev):
    with pytest.raises(RuntimeError, match=_NO_CUDA):
        make(dev)


def test_cpu_device_requests_are_no_ops():
    x = tocha.arange(6.0).reshape(2, 3)
    assert x.cpu() is x and x.to("cpu") is x and x.to(tocha.device("cpu")) is x
    assert x.to("cpu", copy=True) is not x and x.to("cpu", copy=True).tolist() == x.tolist()
    for t in (tocha.zeros(2, device="cpu"), tocha.ones(2, device=tocha.device("cpu")), tocha.rand(2, device="cpu"),
              tocha.tensor([1], device="cpu"), tocha.arange(3, device="cpu"), tocha.zeros_like(x),
              tocha.randn_like(x, device="cpu"), tocha.eye(2, device="cpu")):
        assert t.device == tocha.device("cpu") and t.device.type == "cpu" and not t.is_cuda
    # .to(other) takes the other tensor's dtype and device, like PyTorch
    y = x.to(tocha.zeros(1, dtype=tocha.float64))
    assert y.dtype == tocha.float64 and y.device.type == "cpu"
    # a differentiable no-op: the gradient still reaches x
    w = tocha.ones(3, requires_grad=True)
    w.to("cpu").cpu().sum().backward()
    assert w.grad.tolist() == [1.0, 1.0, 1.0]


def test_device_parsing():
    d = tocha.device("cuda:1")
    assert (d.type, d.index, str(d)) == ("cuda", 1, "cuda:1")
    assert tocha.device("cuda").index is None and str(tocha.device("cuda")) == "cuda"
    assert tocha.device("cuda", 2) == "cuda:2" and tocha.device("cpu") == "cpu"
    assert tocha.device(tocha.device("cuda:3")).index == 3
    assert repr(tocha.device("cuda", 0)) == "device(type='cuda', index=0)"
    assert tocha.device("cuda") == tocha.device("cuda:0")  # the default device is 0
    assert len({tocha.device("cpu"), tocha.device("cpu")}) == 1
    for bad, err in (("gpu", ValueError), ("cuda:x", ValueError), ("cuda:-1", ValueError), (3, TypeError)):
        with pytest.raises(err):
            tocha.device(bad)
    with pytest.raises(ValueError, match="already names an index"):
        tocha.device("cuda:0", 1)


def test_module_to_cpu_round_trip_keeps_values_grads_and_buffers():
    m = tocha.nn.Sequential(tocha.nn.Linear(3, 4), tocha.nn.BatchNorm1d(4), tocha.nn.ReLU(), tocha.nn.Linear(4, 2))
    m(tocha.randn(5, 3)).sum().backward()
    before = {k: v.detach().clone() for k, v in m.state_dict().items()}
    grads = [p.grad.clone() for p in m.parameters()]
    params = list(m.parameters())
    assert m.to("cpu") is m and m.cpu() is m and m.to(tocha.device("cpu")) is m
    opt = tocha.optim.SGD(m.parameters(), lr=0.1)
    m.to("cpu", tocha.float64)
    assert all(p.dtype == tocha.float64 and p.grad.dtype == tocha.float64 for p in m.parameters())
    # parameters are converted in place (as PyTorch): the same objects, so an optimiser made before .to() works
    assert all(a is b for a, b in zip(m.parameters(), params))
    m.to(tocha.zeros(1))  # .to(tensor): its dtype (float32) and device (cpu)
    for (k, v), (k2, v2) in zip(m.state_dict().items(), before.items()):
        assert k == k2 and v.dtype == v2.dtype and v.device.type == "cpu"
        np.testing.assert_array_equal(v.numpy(), v2.numpy())
    for p, g in zip(m.parameters(), grads):
        np.testing.assert_array_equal(p.grad.numpy(), g.numpy())
    w0 = params[0].detach().clone()
    opt.step()
    np.testing.assert_allclose(params[0].detach().numpy(), (w0 - 0.1 * params[0].grad).numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="floating point"):
        m.to(tocha.int64)


def test_optimizer_state_lives_on_the_parameter_device_cpu():
    p = tocha.nn.Parameter(tocha.randn(3, 2))
    for opt in (tocha.optim.SGD([p], lr=0.1, momentum=0.9), tocha.optim.Adam([p], lr=0.1, amsgrad=True)):
        p.grad = tocha.ones(3, 2)
        opt.step()
        for k, v in opt.state[p].items():
            if isinstance(v, tocha.Tensor) and k != "step":
                assert v.device == p.device and v.dtype == p.dtype and v.is_contiguous()
        sd = opt.state_dict()
        opt.load_state_dict(sd)  # tensors keep (or are moved to) the parameter's device
        assert all(v.device == p.device for v in opt.state[p].values() if isinstance(v, tocha.Tensor))


# A CUDA build's dispatch layer, simulated on the CPU: tocha/_dispatch.py is loaded against a fake _C
# that reports has_cuda and records which kernel each call reaches. This checks the routing, the
# device-mismatch and the not-implemented errors without a GPU (the GPU tests below run the real thing).
class _FakeArray:
    def __init__(self, device_type=1, index=0, shape=(2, 3), dtype=F32):
        self.device_type, self.device_index, self.shape, self.dtype = device_type, index, tuple(shape), dtype
        self.ndim = len(self.shape)

    def reshape(self, shape):
        return _FakeArray(self.device_type, self.device_index, shape, self.dtype)

    def transpose(self, d0, d1):
        s = list(self.shape)
        s[d0], s[d1] = s[d1], s[d0]
        return _FakeArray(self.device_type, self.device_index, s, self.dtype)


class _FakeC:
    has_cuda = True

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        # only bindings that bind_cuda.cpp declares exist (so the dispatch cannot use an undeclared one)
        if name.startswith("__") or name.startswith("cuda_") and name not in _declared_cuda_bindings():
            raise AttributeError(name)

        def kernel(*args):
            self.calls.append(name)
            if name == "to_device":
                return _FakeArray(args[1], args[2], args[0].shape, args[0].dtype)
            if name == "full":
                return _FakeArray(0, 0, args[0], args[2])
            if name == "cuda_matmul":
                return _FakeArray(1, args[0].device_index, (args[0].shape[0], args[1].shape[1]), args[0].dtype)
            return _FakeArray(1 if name.startswith("cuda_") else 0, 0, args[1].shape if len(args) > 1 and
                              hasattr(args[1], "shape") else (1,))

        return kernel


@pytest.fixture
def sim(monkeypatch):
    import importlib.util

    fake = _FakeC()
    for n in ("unary", "binary", "sgd_step_", "adam_step_", "rmsprop_step_", "index_select"):
        setattr(fake, n, getattr(fake, n))  # the names the module copies from vars(_C)
    monkeypatch.setattr(tocha, "_C", fake)
    spec = importlib.util.spec_from_file_location("tocha._dispatch_sim", ROOT / "python" / "tocha" / "_dispatch.py")
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "tocha"
    spec.loader.exec_module(mod)
    monkeypatch.undo()
    return mod, fake


def test_sim_routes_cpu_and_cuda_arrays_to_their_kernels(sim):
    d, fake = sim
    from tocha import _ops

    cpu_a, cuda_a = _FakeArray(0), _FakeArray(1)
    d.K.binary(_ops.B_ADD, cpu_a, cpu_a)
    d.K.binary(_ops.B_ADD, cuda_a, cuda_a)
    d.K.unary(_ops.U_EXP, cuda_a)
    d.K.reduce(_ops.R_SUM, cuda_a, [0], False, None)
    d.K.softmax(cuda_a, 1, True)
    d.K.matmul(cuda_a, _FakeArray(1, shape=(3, 4)))
    d.K.uniform_(cuda_a, 0.0, 1.0)
    d.K.sgd_step_(cuda_a, cuda_a, None, 0.1, 0.0, 0.0, 0.0, False, False, True)
    assert fake.calls == ["binary", "cuda_binary", "cuda_unary", "cuda_reduce", "cuda_softmax", "cuda_matmul",
                          "cuda_uniform_", "cuda_sgd_step_"]


def test_sim_device_mismatch_names_both_devices(sim):
    d, fake = sim
    from tocha import _ops

    msg = "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"
    for a, b in ((_FakeArray(1), _FakeArray(0)), (_FakeArray(0), _FakeArray(1))):
        with pytest.raises(RuntimeError, match=msg):
            d.K.binary(_ops.B_MUL, a, b)
    with pytest.raises(RuntimeError, match="cuda:1 and cuda:0"):
        d.K.binary(_ops.B_MUL, _FakeArray(1, 1), _FakeArray(1, 0))
    with pytest.raises(RuntimeError, match=msg):
        d.K.matmul(_FakeArray(1), _FakeArray(0, shape=(3, 4)))
    with pytest.raises(RuntimeError, match=msg):
        d.K.cross_entropy_forward(_FakeArray(1), _FakeArray(0, shape=(2,), dtype=3), -100, None, 0.0)
    assert "cuda_binary" not in fake.calls and "cuda_matmul" not in fake.calls
    # a 0-d CPU tensor next to a CUDA tensor is moved (like a Python scalar), as in PyTorch
    d.K.binary(_ops.B_MUL, _FakeArray(1), _FakeArray(0, shape=()))
    assert fake.calls[-2:] == ["to_device", "cuda_binary"]


def test_sim_ops_without_cuda_kernels_raise_not_implemented(sim):
    d, fake = sim
    from tocha import _ops

    with pytest.raises(NotImplementedError, match=r"\[tan\] has no CUDA kernel yet \(input on cuda:0\)"):
        d.K.unary(_ops.U_TAN, _FakeArray(1))
    with pytest.raises(NotImplementedError, match=r"\[neg\] has no CUDA kernel for int64 yet"):
        d.K.unary(_ops.U_NEG, _FakeArray(1, dtype=3))
    with pytest.raises(NotImplementedError, match=r"\[atan2\] has no CUDA kernel yet"):
        d.K.binary(_ops.B_ATAN2, _FakeArray(1), _FakeArray(1))
    with pytest.raises(NotImplementedError, match=r"\[prod\] has no CUDA kernel yet"):
        d.K.reduce(_ops.R_PROD, _FakeArray(1), [], False, None)
    with pytest.raises(NotImplementedError, match=r"\[rmsprop_step_\] has no CUDA kernel yet"):
        d.K.rmsprop_step_(_FakeArray(1), _FakeArray(1))
    with pytest.raises(NotImplementedError, match="gelu"):
        d.K.linear(_FakeArray(1), _FakeArray(1), None, 2)
    assert not [c for c in fake.calls if c.startswith("cuda_")]
    d.K.rmsprop_step_(_FakeArray(0), _FakeArray(0))  # CPU params still reach the CPU kernel
    assert fake.calls[-1] == "rmsprop_step_"


def test_sim_scalar_operands_become_cached_device_scalars_of_the_cpu_kernels_dtype(sim):
    d, fake = sim
    from tocha import _ops

    d.K.binary_scalar(_ops.B_MUL, _FakeArray(1, dtype=F32), 2.0, True, False)
    d.K.binary_scalar(_ops.B_MUL, _FakeArray(1, dtype=F32), 2.0, True, True)
    assert fake.calls == ["full", "to_device", "cuda_binary", "cuda_binary"]  # second use: cached
    for dtype, s, is_float, want in ((3, 2.0, True, F32), (3, 2.0, False, 3), (0, 2.0, False, 3), (0, 1.0, False, 3),
                                     (F64, 1.0, True, F64)):
        assert d._scalar_dtype(_ops.B_ADD, _FakeArray(1, dtype=dtype), s, is_float) == want
    assert d._scalar_dtype(_ops.B_EQ, _FakeArray(1, dtype=0), 1.0, False) == 0


def test_sim_linear_and_cross_device_copy(sim):
    d, fake = sim
    x, w, b = _FakeArray(1, shape=(4, 5, 3)), _FakeArray(1, shape=(2, 3)), _FakeArray(1, shape=(2,))
    y = d.K.linear(x, w, b, 1)
    assert y.shape == (4, 5, 2) and fake.calls == ["cuda_matmul", "cuda_binary", "cuda_unary"]
    fake.calls.clear()
    d.K.copy_(_FakeArray(0), _FakeArray(1))  # CUDA -> CPU: staged on the host, CPU copy
    d.K.copy_(_FakeArray(1), _FakeArray(0))  # CPU -> CUDA: staged on the device
    assert fake.calls == ["to_device", "copy_", "to_device", "cuda_copy_"]


# ---------------------------------------------------------------- device wiring: GPU

def _leaf(x, device):
    """A fresh leaf on ``device`` with ``x``'s values (and requires_grad)."""
    if not isinstance(x, tocha.Tensor):
        return x
    return x.detach().to(device).requires_grad_(x.requires_grad)


def _cross_device(fn, inputs, atol, rtol):
    """Run ``fn`` on CPU and CUDA copies of ``inputs``; compare outputs and input gradients."""
    outs = {}
    for device in ("cpu", "cuda"):
        xs = [_leaf(x, device) for x in inputs]
        out = fn(*xs)
        out = out if isinstance(out, (tuple, list)) else (out,)
        for o in out:
            assert o.device.type == device, f"output on {o.device}, expected {device}"
        diff = [o for o in out if o.requires_grad]
        grads = []
        if diff:
            seeds = [tocha.ones_like(o) * 0.5 + tocha.arange(o.numel(), dtype=o.dtype, device=device).reshape(o.shape) * 0.01
                     for o in diff]
            leaves = [x for x in xs if isinstance(x, tocha.Tensor) and x.requires_grad]
            grads = tocha.autograd.grad(diff, leaves, seeds, allow_unused=True)
        outs[device] = ([o.detach().cpu().numpy() for o in out],
                        [None if g is None else g.cpu().numpy() for g in grads])
    (oc, gc), (od, gd) = outs["cpu"], outs["cuda"]
    for a, b in zip(oc, od):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(b, a, atol=atol, rtol=rtol)
    for a, b in zip(gc, gd):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b, a, atol=atol, rtol=rtol)


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_cuda_op_matches_cpu_on_its_opinfo_cases(dtype):
    # the registry's own cases (tests/opinfo) for every op the dispatch table claims for CUDA
    from harness import make
    from opinfo import all_cases
    from tocha import _dispatch

    cases = all_cases()
    ran, missing = 0, []
    for name in _dispatch.CUDA_OPS:
        for case in cases.get(name, []):
            if dtype not in case.dtypes:
                continue
            tt, _, _ = make(case.specs, dtype, requires_grad=case.grad)
            tol = 1e-4 if dtype == "float32" else 1e-10
            try:
                _cross_device(lambda *xs, fn=case.fn: fn(tocha, *xs), tt, tol, tol)
            except NotImplementedError as e:  # a variant (e.g. an int dtype) with no CUDA kernel: said clearly
                missing.append(f"{name}: {e}")
                continue
            except Exception as e:  # name the failing op/case
                raise AssertionError(f"{name} case {case.specs}: {e}") from e
            ran += 1
    print(f"{ran} cases ran on CUDA; without a CUDA kernel: {missing}")
    assert ran > 40 and len(missing) < ran / 4, missing


@gpu
@pytest.mark.parametrize("dtype", [tocha.float32, tocha.float64])
@pytest.mark.parametrize("name,fn,shapes", [
    ("add_broadcast", lambda a, b: a + b, [(4, 1, 3), (5, 1)]),
    ("mul_scalar", lambda a: a * 3 - 1 / (a.abs() + 1), [(7, 5)]),
    ("pow", lambda a, b: a.abs().pow(b), [(3, 4), (4,)]),
    ("maximum", lambda a, b: tocha.maximum(a, b) + tocha.minimum(a, b), [(6,), (2, 6)]),
    ("unary_chain", lambda a: (a.exp() + a.tanh() + a.sigmoid() + a.relu() + a.abs().sqrt() + a.abs().log1p()), [(5, 9)]),
    ("sum_mean", lambda a: a.sum(1) + a.mean(1) * 2 + a.sum(), [(4, 33)]),
    ("amax", lambda a: a.amax(0) + a.amin(1).sum(), [(8, 8)]),
    ("softmax", lambda a: tocha.softmax(a, -1) * tocha.log_softmax(a, 0), [(6, 130)]),
    ("matmul_2d", lambda a, b: a @ b, [(33, 17), (17, 9)]),
    ("matmul_batched", lambda a, b: a @ b, [(3, 5, 4), (4, 2)]),
    ("matmul_vec", lambda a, b: a @ b, [(5, 4), (4,)]),
    ("linear", lambda x, w, b: tocha.nn.functional.linear(x, w, b), [(2, 5, 4), (3, 4), (3,)]),
    ("transpose_contiguous", lambda a: a.t().contiguous() * 2 + a.t().clone(), [(4, 6)]),
    ("compare", lambda a, b: (a > b).to(a.dtype) * a + (a <= b).to(a.dtype) * b, [(3, 4), (3, 4)]),
])
def test_tensor_ops_fwd_bwd_match_cpu(name, fn, shapes, dtype):
    rng = np.random.default_rng(hash(name) % 1000)
    xs = [tocha.tensor(rng.standard_normal(s), dtype=dtype, requires_grad=True) for s in shapes]
    tol = 1e-4 if dtype == tocha.float32 else 1e-10
    _cross_device(fn, xs, tol, tol)


@gpu
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_module_matches_cpu(reduction, weighted):
    rng = np.random.default_rng(3)
    x = tocha.tensor(rng.standard_normal((16, 7)), dtype=tocha.float64, requires_grad=True)
    t = tocha.tensor(rng.integers(0, 7, 16))
    t[2] = -100
    w = tocha.tensor(rng.uniform(0.5, 2, 7), dtype=tocha.float64) if weighted else None
    _cross_device(lambda x, t, w: tocha.nn.functional.cross_entropy(x, t, weight=w, reduction=reduction,
                                                                      label_smoothing=0.1), [x, t, w], 1e-10, 1e-10)


@gpu
def test_to_cuda_cpu_round_trip_and_properties():
    x = tocha.arange(12.0).reshape(3, 4)
    for d in (x.to("cuda"), x.cuda(), x.to(tocha.device("cuda", 0)), x.to("cuda:0"), x.to(0),
              x.to(tocha.zeros(1, device="cuda"))):
        assert d.is_cuda and d.device == tocha.device("cuda:0") and d.device.type == "cuda"
        assert d.cpu().tolist() == x.tolist() and d.tolist() == x.tolist()
    d = x.cuda()
    assert d.cuda() is d and d.to("cuda") is d and d.cpu() is not d
    assert "device='cuda:0'" in repr(d)
    assert float(d.sum()) == 66.0 and d[1, 2].item() == 6.0
    y = d.to("cpu", tocha.float64)
    assert y.device.type == "cpu" and y.dtype == tocha.float64
    with pytest.raises(TypeError, match="cuda:0 device type tensor to numpy"):
        d.numpy()
    np.testing.assert_array_equal(np.asarray(d), x.numpy())  # __array__ copies to the host
    # .to is differentiable both ways
    w = tocha.ones(3, requires_grad=True)
    (w.cuda() * 2).cpu().sum().backward()
    assert w.grad.device.type == "cpu" and w.grad.tolist() == [2.0, 2.0, 2.0]
    v = tocha.ones(3, device="cuda", requires_grad=True)
    (v.cpu() * 3).sum().backward()
    assert v.grad.is_cuda and v.grad.tolist() == [3.0, 3.0, 3.0]


@gpu
def test_creation_functions_on_cuda_match_cpu():
    for fn in (lambda d: tocha.tensor([[1, 2], [3, 4]], device=d), lambda d: tocha.zeros(2, 3, device=d),
               lambda d: tocha.ones(4, dtype=tocha.float64, device=d), lambda d: tocha.full((2, 2), 7, device=d),
               lambda d: tocha.arange(0, 10, 3, device=d), lambda d: tocha.linspace(-1, 1, 7, device=d),
               lambda d: tocha.eye(3, device=d), lambda d: tocha.zeros_like(tocha.ones(3, device=d)),
               lambda d: tocha.full_like(tocha.ones(3, device=d), 2.5), lambda d: tocha.ones(2, device=d).new_ones(3)):
        c, g = fn("cpu"), fn("cuda")
        assert g.is_cuda and g.dtype == c.dtype and g.cpu().tolist() == c.tolist()
    assert tocha.empty(5, device="cuda").is_cuda and tocha.empty_like(tocha.ones(2, device="cuda")).is_cuda
    # the same Philox stream on both devices: rand is bitwise equal, randn to an ulp
    for fn, exact in ((tocha.rand, True), (tocha.randn, False)):
        tocha.manual_seed(7)
        c = fn(1001)
        tocha.manual_seed(7)
        g = fn(1001, device="cuda")
        assert g.is_cuda
        if exact:
            np.testing.assert_array_equal(g.cpu().numpy(), c.numpy())
        else:
            np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), rtol=1e-5, atol=1e-6)
    assert tocha.randn_like(tocha.ones(3, device="cuda")).is_cuda and tocha.randint(0, 5, (4,), device="cuda").is_cuda


@gpu
def test_device_mismatch_and_missing_kernels_raise_clear_errors():
    a, b = tocha.ones(3, device="cuda"), tocha.ones(3)
    msg = "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"
    for f in (lambda: a + b, lambda: b * a, lambda: a @ tocha.ones(3, 2), lambda: tocha.maximum(b, a)):
        with pytest.raises(RuntimeError, match=msg):
            f()
    assert (a + tocha.tensor(2.0)).tolist() == [3.0] * 3  # 0-d CPU operands are allowed, as in PyTorch
    with pytest.raises(NotImplementedError, match=r"\[tan\] has no CUDA kernel yet"):
        a.tan()
    with pytest.raises(NotImplementedError, match="cuda:0"):
        tocha.where(a > 0, a, a)  # a CPU-only kernel refuses device storage: never a crash
    with pytest.raises(NotImplementedError, match=r"\[.*\] expected a CPU tensor, got cuda:0"):
        tocha.nn.functional.leaky_relu(tocha.ones(2, 3, device="cuda"))


@gpu
def test_inplace_ops_and_grad_accumulation_on_cuda():
    x = tocha.ones(4, device="cuda")
    x.add_(2)
    x.mul_(tocha.full((4,), 3.0, device="cuda"))
    x.relu_()
    assert x.tolist() == [9.0] * 4
    x.zero_()
    assert x.tolist() == [0.0] * 4
    x.copy_(tocha.arange(4.0))  # cross-device copy_ is allowed
    assert x.is_cuda and x.tolist() == [0.0, 1.0, 2.0, 3.0]
    w = tocha.ones(3, device="cuda", requires_grad=True)
    for _ in range(2):  # the second backward accumulates into .grad on the device
        (w * 2).sum().backward()
    assert w.grad.is_cuda and w.grad.tolist() == [4.0] * 3


@gpu
def test_module_to_cuda_moves_params_buffers_and_grads():
    m = tocha.nn.Sequential(tocha.nn.Linear(3, 4), tocha.nn.BatchNorm1d(4), tocha.nn.Linear(4, 2))
    m(tocha.randn(5, 3)).sum().backward()
    ref = {k: v.clone() for k, v in m.state_dict().items()}
    grads = [p.grad.clone() for p in m.parameters()]
    assert m.cuda() is m
    for k, v in m.state_dict().items():
        assert v.is_cuda and v.cpu().tolist() == ref[k].tolist(), k
    for p, g in zip(m.parameters(), grads):
        assert p.is_cuda and p.grad.is_cuda and p.grad.cpu().tolist() == g.tolist()
    m.to("cpu", tocha.float64)
    assert all(not p.is_cuda and p.dtype == tocha.float64 for p in m.parameters())


def _mlp_losses(device, opt_name, steps=50):
    tocha.manual_seed(0)
    model = tocha.nn.Sequential(tocha.nn.Linear(20, 64), tocha.nn.ReLU(), tocha.nn.Linear(64, 64), tocha.nn.Tanh(),
                                tocha.nn.Linear(64, 5)).to(device)
    opt = (tocha.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
           if opt_name == "sgd" else tocha.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True))
    rng = np.random.default_rng(0)
    x = tocha.tensor(rng.standard_normal((128, 20)).astype(np.float32), device=device)
    y = tocha.tensor(rng.integers(0, 5, 128), device=device)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = tocha.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    for p in model.parameters():
        assert p.device.type == device
        for v in opt.state[p].values():
            if isinstance(v, tocha.Tensor):
                assert v.device.type == device
    return np.array(losses)


@gpu
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_mlp_training_cpu_and_cuda_losses_agree(opt_name):
    cpu_l, gpu_l = _mlp_losses("cpu", opt_name), _mlp_losses("cuda", opt_name)
    assert gpu_l[-1] < gpu_l[0] * 0.9
    np.testing.assert_allclose(gpu_l, cpu_l, rtol=2e-3, atol=2e-4)


@gpu
@pytest.mark.parametrize("dtype", [tocha.float32, tocha.float64])
@pytest.mark.parametrize("make_opt", [
    lambda ps: tocha.optim.SGD(ps, lr=0.1),
    lambda ps: tocha.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
    lambda ps: tocha.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, maximize=True),
    lambda ps: tocha.optim.Adam(ps, lr=0.01, weight_decay=0.1),
    lambda ps: tocha.optim.Adam(ps, lr=0.01, amsgrad=True, maximize=True),
    lambda ps: tocha.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
])
def test_optim_step_matches_cpu(make_opt, dtype):
    rng = np.random.default_rng(0)
    p0, grads = rng.standard_normal((7, 5)), [rng.standard_normal((7, 5)) for _ in range(4)]
    res = {}
    for device in ("cpu", "cuda"):
        p = tocha.nn.Parameter(tocha.tensor(p0, dtype=dtype, device=device))
        opt = make_opt([p])
        for g in grads:
            p.grad = tocha.tensor(g, dtype=dtype, device=device)
            opt.step()
        res[device] = p.detach().cpu().numpy()
    tol = 1e-6 if dtype == tocha.float32 else 1e-13
    np.testing.assert_allclose(res["cuda"], res["cpu"], rtol=tol, atol=tol)


@gpu
def test_optimizers_without_cuda_kernels_say_so():
    p = tocha.nn.Parameter(tocha.ones(3, device="cuda"))
    p.grad = tocha.ones(3, device="cuda")
    with pytest.raises(NotImplementedError, match=r"\[rmsprop_step_\] has no CUDA kernel yet"):
        tocha.optim.RMSprop([p]).step()


@gpu
def test_view_and_cat_backward_keep_gradients_on_the_device():
    x = tocha.tensor(np.random.default_rng(4).standard_normal((4, 5)), requires_grad=True)
    _cross_device(lambda x: x[1:3, ::2].sum() + x[0].sum() * 2 + x.diagonal().sum() + (tocha.cat([x, x * 2], 0) ** 2).sum()
                  + x.narrow(1, 1, 3).mean(), [x], 1e-10, 1e-10)
    d = x.detach().cuda()
    with pytest.raises(RuntimeError, match="same device"):
        tocha.cat([d, d.cpu()])


@gpu
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_masks_are_identical_on_cpu_and_cuda(p):
    x = tocha.tensor(np.random.default_rng(5).standard_normal((33, 65)), dtype=tocha.float32)
    outs = []
    for device in ("cpu", "cuda"):
        xd = x.to(device).requires_grad_()
        tocha.manual_seed(11)
        y = tocha.nn.functional.dropout(xd, p) + tocha.nn.functional.dropout2d(xd.reshape(1, 33, 65, 1), p).reshape(33, 65)
        y.sum().backward()
        assert y.device.type == device and xd.grad.device.type == device
        outs.append((y.detach().cpu().numpy(), xd.grad.cpu().numpy(), tocha.bernoulli(tocha.full((9,), 0.5, device=device)).cpu().numpy()))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(b, a)  # the same Philox draws: bitwise-equal masks


@gpu
@pytest.mark.parametrize("dtype", [tocha.float32, tocha.float64])
@pytest.mark.parametrize("kind", ["affine", "plain", "rms", "rms_weight", "big_mean"])
def test_layer_norm_matches_cpu(kind, dtype):
    rng = np.random.default_rng(6)
    x = tocha.tensor(rng.standard_normal((5, 7, 300)) + (1e3 if kind == "big_mean" else 0), dtype=dtype,
                     requires_grad=True)
    w = tocha.tensor(rng.uniform(0.5, 1.5, 300), dtype=dtype, requires_grad=True)
    b = tocha.tensor(rng.standard_normal(300), dtype=dtype, requires_grad=True)
    F = tocha.nn.functional
    fn = {"affine": lambda x, w, b: F.layer_norm(x, (300,), w, b), "plain": lambda x, w, b: F.layer_norm(x, (7, 300)),
          "rms": lambda x, w, b: F.rms_norm(x, (300,)), "rms_weight": lambda x, w, b: F.rms_norm(x, (300,), w),
          "big_mean": lambda x, w, b: F.layer_norm(x, (300,), w, b)}[kind]
    tol = 2e-4 if dtype == tocha.float32 else 1e-10
    _cross_device(fn, [x, w, b], tol, tol)
