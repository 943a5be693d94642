"""GEMM: tocha vs NumPy (OpenBLAS) and PyTorch CPU in the same process.

    python benchmarks/bench_matmul.py [--threads 1|2] [--json out.json] [--quick]

Shapes (M x K x N): squares 64..2048; DL shapes 64x784x128, 128x128x784, 784x64x128, 256x1024x1024,
4096x256x256, each also as A^T B and A B^T (tocha reads the transposed views without copying; NumPy
and torch get the same views); fused Linear+bias+ReLU vs ``np.maximum(x @ w.T + b, 0)``;
matrix-vector shapes 4096x784x1, 1x784x128, 1x1024x1024 (M == 1 or N == 1 run the GEMV kernel).
Ratios are reference_time / tocha_time (> 1: tocha faster). Also prints the FMA peak of one core
(AVX2: 2 FMA units x 8 float32 lanes x 2 flops per cycle at the clock read from /proc/cpuinfo) and
single-thread SGEMM efficiency against it.
"""

import harness  # noqa: F401  (pins BLAS/OpenMP threads before NumPy loads)
import numpy as np

import tocha
import tocha.nn.functional as F
from harness import dump, machine, parser, set_threads, table, timeit_many

try:
    import torch
except ImportError:
    torch = None


def cpu_mhz():
    try:
        with open("/proc/cpuinfo") as f:
            vals = [float(line.split(":")[1]) for line in f if line.lower().startswith("cpu mhz")]
        return max(vals) if vals else None
    except OSError:
        return None


def operands(m, k, n, variant, rng):
    if variant == "AB":
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    elif variant == "AtB":
        a, b = rng.standard_normal((k, m)).T, rng.standard_normal((k, n))
    else:  # ABt
        a, b = rng.standard_normal((m, k)), rng.standard_normal((n, k)).T
    return a.astype(np.float32), b.astype(np.float32)


def bench_case(m, k, n, variant, rep, rng):
    a, b = operands(m, k, n, variant, rng)
    ta, tb = tocha.from_numpy(a), tocha.from_numpy(b)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose((ta @ tb).numpy(), ref, rtol=1e-3, atol=1e-3 * np.sqrt(k))
    flops = 2.0 * m * n * k
    fns = {"tocha": lambda: ta @ tb, "numpy": lambda: a @ b}
    if torch is not None:
        pa, pb = torch.from_numpy(a), torch.from_numpy(b)
        fns["torch"] = lambda: pa @ pb
    t = timeit_many(fns, rep, min_time=0.05)
    tt, tn = t["tocha"], t["numpy"]
    row = {"shape": f"{m}x{k}x{n} {variant}", "tocha GFLOP/s": f"{flops / tt / 1e9:.1f}",
           "numpy GFLOP/s": f"{flops / tn / 1e9:.1f}", "vs numpy": f"{tn / tt:.2f}x"}
    if torch is not None:
        row.update({"torch GFLOP/s": f"{flops / t['torch'] / 1e9:.1f}", "vs torch": f"{t['torch'] / tt:.2f}x"})
    return row, flops / tt / 1e9


def main():
    p = parser(__doc__)
    p.add_argument("--peak-ghz", type=float, default=None,
                   help="core clock for the FMA peak (e.g. measured with a tight FMA loop); default /proc/cpuinfo")
    args = p.parse_args()
    threads = set_threads(args.threads)
    rng = np.random.default_rng(0)
    rep = 3 if args.quick else args.repeat
    squares = [64, 128, 256] if args.quick else [64, 128, 256, 512, 1024, 2048]
    dl = [(64, 784, 128), (128, 128, 784), (784, 64, 128)] if args.quick else \
        [(64, 784, 128), (128, 128, 784), (784, 64, 128), (256, 1024, 1024), (4096, 256, 256)]
    rows = []
    best = 0.0
    for s in squares:
        r, gf = bench_case(s, s, s, "AB", rep, rng)
        rows.append(r)
        best = max(best, gf)
    for (m, k, n) in dl:
        for v in ("AB", "AtB", "ABt"):
            rows.append(bench_case(m, k, n, v, rep, rng)[0])
    # matrix-vector (N == 1: X @ w of a linear/logistic regression; M == 1: one sample through a Linear)
    for (m, k, n) in ([(4096, 784, 1)] if args.quick else [(4096, 784, 1), (1, 784, 128), (1, 1024, 1024)]):
        for v in ("AB", "AtB", "ABt"):
            rows.append(bench_case(m, k, n, v, rep, rng)[0])
    # fused Linear + bias + ReLU
    from tocha._ops import _linear_act

    for (m, k, n) in [(64, 784, 128), (256, 1024, 1024)]:
        x = rng.standard_normal((m, k)).astype(np.float32)
        w = rng.standard_normal((n, k)).astype(np.float32)
        b = rng.standard_normal(n).astype(np.float32)
        tx, tw, tb = tocha.from_numpy(x), tocha.from_numpy(w), tocha.from_numpy(b)
        ref = np.maximum(x @ w.T + b, 0)
        np.testing.assert_allclose(_linear_act(tx, tw, tb, "relu").numpy(), ref, rtol=1e-3, atol=1e-3 * np.sqrt(k))
        fns = {"tocha": lambda: _linear_act(tx, tw, tb, "relu"), "numpy": lambda: np.maximum(x @ w.T + b, 0)}
        if torch is not None:
            px, pw, pb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
            fns["torch"] = lambda: torch.relu(torch.nn.functional.linear(px, pw, pb))
        t = timeit_many(fns, rep, min_time=0.05)
        tt, tn = t["tocha"], t["numpy"]
        row = {"shape": f"linear+bias+relu {m}x{k}x{n}", "tocha GFLOP/s": f"{2 * m * n * k / tt / 1e9:.1f}",
               "numpy GFLOP/s": f"{2 * m * n * k / tn / 1e9:.1f}", "vs numpy": f"{tn / tt:.2f}x"}
        if torch is not None:
            row.update({"vs torch": f"{t['torch'] / tt:.2f}x"})
        rows.append(row)
    mhz = cpu_mhz()
    print(f"threads={threads}  {machine()}")
    print(f"best tocha square SGEMM: {best:.1f} GFLOP/s ({best / threads:.1f} per core)")
    measured = tocha._C.fma_peak_gflops(0.3)  # tight FMA loop, one core, this ISA path
    if measured > 0:
        print(f"measured FMA peak (one core, {tocha._C.gemm_isa()} FMA loop): {measured:.1f} GFLOP/s -> best "
              f"single-core SGEMM = {100 * best / threads / measured:.0f}% of it")
    if args.peak_ghz or mhz:
        ghz = args.peak_ghz or mhz / 1e3
        peak = 32 * ghz * threads   # AVX2: 2 FMA units x 8 float32 lanes x 2 flops per cycle
        src = "given by --peak-ghz" if args.peak_ghz else "nominal clock from /proc/cpuinfo; turbo may be higher"
        print(f"FMA peak at {ghz:.2f} GHz ({src}): {peak:.1f} GFLOP/s -> {100 * best / peak:.0f}% of peak")
    print(table(rows, ["shape", "tocha GFLOP/s", "numpy GFLOP/s", "vs numpy", "torch GFLOP/s", "vs torch"]))
    dump(args.json, rows, {"peak_mhz": mhz})


if __name__ == "__main__":
    main()
