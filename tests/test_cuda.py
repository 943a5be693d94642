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
                        U_SIGMOID, U_SQRT, U_TANH, U_TAN)

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
@pytest.mark.parametrize("op", [U_NEG, U_ABS, U_EXP, U_LOG, U_SQRT, U_TANH, U_SIGMOID, U_RELU])
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
