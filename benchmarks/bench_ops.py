"""Elementwise ops, reductions and softmax: tocha vs NumPy (and PyTorch CPU when installed), same process.

    python benchmarks/bench_ops.py [--threads N] [--json out.json]

Prints median time, GB/s and the ratio reference_time / tocha_time (> 1 means tocha is faster).
"""

import harness  # noqa: F401  (pins BLAS/OpenMP threads before NumPy loads)
import numpy as np
import tocha
from harness import dump, fmt_time, machine, parser, set_threads, table, timeit_many

try:
    import torch
except ImportError:  # torch is optional here
    torch = None


def cases(n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    pos = np.abs(a) + np.float32(1e-3)
    rows = max(1, n // 1024)                                  # 2-d shapes with the same element count
    m = rng.standard_normal((rows, 1024)).astype(np.float32)
    mt = np.ascontiguousarray(rng.standard_normal((1024, rows)).astype(np.float32))
    v = rng.standard_normal(1024).astype(np.float32)
    sm = rng.standard_normal((rows, 1000)).astype(np.float32)            # (4096, 1000) at the default n
    ta, tb, tpos, tm, tmt, tv, tsm = (tocha.from_numpy(x) for x in (a, b, pos, m, mt, v, sm))
    if torch:
        pa, pb, ppos, pm, pmt, pv, psm = (torch.from_numpy(x) for x in (a, b, pos, m, mt, v, sm))

    def np_softmax(x):
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    T = (lambda f: f) if torch else (lambda f: None)
    # (name, tocha fn, numpy fn, torch fn, bytes moved)
    return [
        (f"add ({n:,} f32)", lambda: ta + tb, lambda: a + b, T(lambda: pa + pb), 12 * n),
        (f"mul ({n:,} f32)", lambda: ta * tb, lambda: a * b, T(lambda: pa * pb), 12 * n),
        (f"relu ({n:,} f32)", lambda: tocha.relu(ta), lambda: np.maximum(a, 0), T(lambda: torch.relu(pa)),
         8 * n),
        (f"exp ({n:,} f32)", lambda: tocha.exp(ta), lambda: np.exp(a), T(lambda: torch.exp(pa)), 8 * n),
        (f"log ({n:,} f32)", lambda: tocha.log(tpos), lambda: np.log(pos), T(lambda: torch.log(ppos)), 8 * n),
        (f"tanh ({n:,} f32)", lambda: tocha.tanh(ta), lambda: np.tanh(a), T(lambda: torch.tanh(pa)), 8 * n),
        (f"sigmoid ({n:,} f32)", lambda: tocha.sigmoid(ta), lambda: 1 / (1 + np.exp(-a)),
         T(lambda: torch.sigmoid(pa)), 8 * n),
        (f"sum ({n:,} f32)", lambda: ta.sum(), lambda: a.sum(), T(lambda: pa.sum()), 4 * n),
        (f"bcast add {m.shape}+(1024,)", lambda: tm + tv, lambda: m + v, T(lambda: pm + pv), 8 * m.size),
        (f"strided add {m.shape}+T{mt.shape}", lambda: tm + tmt.t(), lambda: m + mt.T,
         T(lambda: pm + pmt.t()), 12 * m.size),
        (f"softmax {sm.shape} dim=1", lambda: tocha.softmax(tsm, 1), lambda: np_softmax(sm),
         T(lambda: torch.softmax(psm, 1)), 8 * sm.size),
    ]


def main():
    args = parser(__doc__).parse_args()
    threads = set_threads(args.threads)
    n = 1 << 22 if not args.quick else 1 << 16
    rows = []
    all_cases = cases(n)
    for name, ft, fn, fp, nbytes in all_cases:  # check every case first (also warms the allocator up)
        atol = 1e-2 if name.startswith("sum") else 1e-5
        np.testing.assert_allclose(np.asarray(ft()), fn(), rtol=1e-4, atol=atol)
    for name, ft, fn, fp, nbytes in all_cases:
        t = timeit_many({"tocha": ft, "numpy": fn, **({"torch": fp} if fp else {})}, args.repeat)
        tt, tn = t["tocha"], t["numpy"]
        row = {"op": name, "tocha": fmt_time(tt), "numpy": fmt_time(tn),
               "vs numpy": f"{tn / tt:.2f}x", "tocha GB/s": f"{nbytes / tt / 1e9:.1f}"}
        if fp:
            tp = t["torch"]
            row.update({"torch": fmt_time(tp), "vs torch": f"{tp / tt:.2f}x"})
        rows.append(row)
    print(f"threads={threads}  {machine()}")
    print(table(rows, ["op", "tocha", "numpy", "vs numpy", "torch", "vs torch", "tocha GB/s"]))
    dump(args.json, rows)


if __name__ == "__main__":
    main()
