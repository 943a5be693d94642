"""Elementwise ops and reductions: tocha vs NumPy (and PyTorch CPU when installed), same process.

    python benchmarks/bench_ops.py [--threads N] [--json out.json]

Prints median time, GB/s and the ratio reference_time / tocha_time (> 1 means tocha is faster).
"""

import harness  # noqa: F401  (pins BLAS/OpenMP threads before NumPy loads)
import numpy as np

import tocha
from harness import dump, fmt_time, machine, parser, set_threads, table, timeit

try:
    import torch
except ImportError:  # torch is optional here
    torch = None


def cases(n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    ta, tb = tocha.from_numpy(a), tocha.from_numpy(b)
    pa, pb = (torch.from_numpy(a), torch.from_numpy(b)) if torch else (None, None)
    # (name, tocha fn, numpy fn, torch fn, bytes moved)
    return [
        ("add", lambda: ta + tb, lambda: a + b, (lambda: pa + pb) if torch else None, 12 * n),
        ("mul", lambda: ta * tb, lambda: a * b, (lambda: pa * pb) if torch else None, 12 * n),
        ("relu", lambda: tocha.relu(ta), lambda: np.maximum(a, 0), (lambda: torch.relu(pa)) if torch else None, 8 * n),
        ("exp", lambda: tocha.exp(ta), lambda: np.exp(a), (lambda: torch.exp(pa)) if torch else None, 8 * n),
        ("sum", lambda: ta.sum(), lambda: a.sum(), (lambda: pa.sum()) if torch else None, 4 * n),
    ]


def main():
    args = parser(__doc__).parse_args()
    threads = set_threads(args.threads)
    n = 1 << 22 if not args.quick else 1 << 16
    rows = []
    for name, ft, fn, fp, nbytes in cases(n):
        np.testing.assert_allclose(np.asarray(ft()), fn(), rtol=1e-4, atol=1e-2 if name == "sum" else 1e-5)
        tt = timeit(ft, args.repeat)
        tn = timeit(fn, args.repeat)
        row = {"op": f"{name} ({n:,} f32)", "tocha": fmt_time(tt), "numpy": fmt_time(tn),
               "vs numpy": f"{tn / tt:.2f}x", "tocha GB/s": f"{nbytes / tt / 1e9:.1f}"}
        if fp:
            tp = timeit(fp, args.repeat)
            row.update({"torch": fmt_time(tp), "vs torch": f"{tp / tt:.2f}x"})
        rows.append(row)
    print(f"threads={threads}  {machine()}")
    print(table(rows, ["op", "tocha", "numpy", "vs numpy", "torch", "vs torch", "tocha GB/s"]))
    dump(args.json, rows)


if __name__ == "__main__":
    main()
