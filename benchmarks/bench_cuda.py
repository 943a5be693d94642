"""Benchmark tocha's CUDA kernels against PyTorch CUDA (cuBLAS / native kernels). GPU machines only.

    python benchmarks/bench_cuda.py [--sizes 1024 2048 4096 8192] [--repeats 10] [--quick]

Prints one table row per case: median milliseconds of tocha and torch, achieved TFLOP/s (GEMM) or
GB/s (memory-bound ops), and the ratio torch_time / tocha_time (>= 1 means tocha is faster).
Goal from the [cuda] issue: SGEMM >= 0.8x cuBLAS at 4096^3; the MLP training step (Tensor level, through
tocha's device dispatch) against the same model in PyTorch CUDA. Every call is followed by a device
synchronize, so times include launch overhead. Exits with a message (status 1) when tocha was built
without CUDA or no GPU is visible. Needs a tocha built with -Ccmake.define.TOCHA_CUDA=ON.
"""
import argparse
import statistics
import sys
import time

import numpy as np


def _median_ms(fn, sync, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _mlp_step(mod, batch, width):
    """One SGD(momentum) training step of a 784-width-width-10 ReLU MLP on CUDA, for ``mod`` = tocha/torch."""
    mod.manual_seed(0)
    nn = mod.nn
    model = nn.Sequential(nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, 10)).to("cuda")
    opt = mod.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = mod.tensor(rng.standard_normal((batch, 784)).astype(np.float32), device="cuda")
    y = mod.tensor(rng.integers(0, 10, batch), device="cuda")

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="sizes 1024 2048, 3 repeats")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.repeats = [1024, 2048], 3

    import tocha
    from tocha import _C

    if not getattr(_C, "has_cuda", False):
        sys.exit("bench_cuda: tocha was built without CUDA; rebuild with "
                 "`pip install --no-build-isolation -Ccmake.define.TOCHA_CUDA=ON .` on the GPU machine")
    if not tocha.cuda.is_available():
        sys.exit(f"bench_cuda: no CUDA GPU visible ({_C.cuda_device_status()}); nothing to measure")
    try:
        import torch
    except ImportError:
        sys.exit("bench_cuda: PyTorch is needed as the reference")
    if not torch.cuda.is_available():
        sys.exit("bench_cuda: torch.cuda.is_available() is False; the reference cannot run")

    print(_C.cuda_self_test())  # correctness first: refuse to time wrong kernels
    torch.backends.cuda.matmul.allow_tf32 = False  # compare FP32 with FP32
    dev = lambda x: _C.to_device(tocha.tensor(x)._a, 1, 0)  # noqa: E731
    tsync, csync = torch.cuda.synchronize, _C.cuda_synchronize
    print(f"device: {torch.cuda.get_device_name(0)}  repeats={args.repeats} (median)")
    print(f"{'case':34s} {'tocha ms':>10s} {'torch ms':>10s} {'tocha':>10s} {'torch':>10s} {'ratio':>7s}")

    def row(name, t_ms, r_ms, unit, work):
        print(f"{name:34s} {t_ms:10.3f} {r_ms:10.3f} {work / t_ms / 1e9:8.2f}{unit} {work / r_ms / 1e9:8.2f}{unit} "
              f"{r_ms / t_ms:6.2f}x")

    for dtype, tname in ((np.float32, "f32"), (np.float64, "f64")):
        for n in args.sizes:
            if dtype == np.float64 and n > 4096:
                continue  # float64 exists for gradcheck, not speed
            a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
            b = np.random.default_rng(1).standard_normal((n, n)).astype(dtype)
            da, db = dev(a), dev(b)
            ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
            t = _median_ms(lambda: _C.cuda_matmul(da, db), csync, args.repeats)
            r = _median_ms(lambda: torch.matmul(ta, tb), tsync, args.repeats)
            row(f"gemm {tname} {n}^3", t, r, "TF", 2.0 * n**3 / 1e3)
            del da, db, ta, tb

    rows, cols = 8192, 4096
    x = np.random.default_rng(2).standard_normal((rows, cols)).astype(np.float32)
    dx, tx = dev(x), torch.from_numpy(x).cuda()
    nbytes = x.nbytes
    t = _median_ms(lambda: _C.cuda_softmax(dx, 1, False), csync, args.repeats)
    r = _median_ms(lambda: torch.softmax(tx, 1), tsync, args.repeats)
    row(f"softmax f32 {rows}x{cols} dim=1", t, r, "GB", 2 * nbytes / 1e3)
    t = _median_ms(lambda: _C.cuda_reduce(0, dx, [], False, None), csync, args.repeats)
    r = _median_ms(lambda: tx.sum(), tsync, args.repeats)
    row(f"sum f32 {rows}x{cols} all", t, r, "GB", nbytes / 1e3)
    t = _median_ms(lambda: _C.cuda_reduce(0, dx, [0], False, None), csync, args.repeats)
    r = _median_ms(lambda: tx.sum(0), tsync, args.repeats)
    row(f"sum f32 {rows}x{cols} dim=0", t, r, "GB", nbytes / 1e3)
    t = _median_ms(lambda: _C.cuda_binary(0, dx, dx), csync, args.repeats)
    r = _median_ms(lambda: tx + tx, tsync, args.repeats)
    row(f"add f32 {rows}x{cols}", t, r, "GB", 3 * nbytes / 1e3)
    # Tensor-level training step through the device dispatch (Module.to, autograd, fused CE, SGD kernel)
    for batch, width in ((64, 256), (1024, 1024)):
        t = _median_ms(_mlp_step(tocha, batch, width), csync, args.repeats)
        r = _median_ms(_mlp_step(torch, batch, width), tsync, args.repeats)
        flops = 6.0 * batch * (784 * width + width * width + width * 10)  # fwd + bwd GEMMs
        row(f"MLP 784-{width}-{width}-10 step b={batch}", t, r, "TF", flops / 1e3)
    print(f"allocator: allocated={tocha.cuda.memory_allocated()} peak={tocha.cuda.max_memory_allocated()} "
          f"reserved={tocha.cuda.memory_reserved()}")


if __name__ == "__main__":
    main()
