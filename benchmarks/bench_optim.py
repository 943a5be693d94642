"""Optimiser step benchmark: tocha's fused C++ updates vs torch.optim on CPU, same process.

Cases: Adam (defaults) and SGD with momentum 0.9 over one float32 parameter of 1M and 10M
elements (the gradient is fixed, so one call = one full update). PyTorch is timed in its default
CPU mode (single-tensor loop of ~10 tensor ops), with ``foreach=True`` and with ``fused=True``.
Correctness is checked first: 3 steps from the same state must agree with PyTorch.

    python benchmarks/bench_optim.py [--quick] [--threads N] [--repeat R] [--json out.json]

Columns: median time per step, effective bandwidth (Adam moves 28 B/element: reads p, g, m, v and
writes p, m, v; SGD-momentum 20 B/element), and speed-up = torch time / tocha time (> 1: tocha faster).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
import numpy as np


def _setup(lib, name, n, p0, g, **kw):
    p = lib.tensor(p0, requires_grad=True)
    p.grad = lib.tensor(g)
    if name == "Adam":
        opt = lib.optim.Adam([p], lr=1e-3, **kw)
    else:
        opt = lib.optim.SGD([p], lr=1e-3, momentum=0.9, **kw)
    return p, opt


def _variants(torch, name):
    out = [("torch", {})]
    out.append(("torch foreach", {"foreach": True}))
    out.append(("torch fused", {"fused": True}))
    return out


def run(args):
    import tocha
    import torch

    nt = harness.set_threads(args.threads)
    sizes = [1_000_000] if args.quick else [1_000_000, 10_000_000]
    repeat = 3 if args.quick else args.repeat
    rows = []
    rng = np.random.default_rng(0)
    for name in ("Adam", "SGD"):
        bytes_per = 28 if name == "Adam" else 20
        for n in sizes:
            p0 = rng.standard_normal(n).astype(np.float32)
            g = rng.standard_normal(n).astype(np.float32)
            # correctness first: 3 steps vs PyTorch's default implementation
            tp, topt = _setup(tocha, name, n, p0, g)
            rp, ropt = _setup(torch, name, n, p0, g)
            for _ in range(3):
                topt.step()
                ropt.step()
            err = np.abs(tp.detach().numpy() - rp.detach().numpy()).max()
            assert err < 1e-5, f"{name} n={n}: max |tocha - torch| = {err}"
            del rp, ropt
            t_ours = harness.timeit(topt.step, repeat=repeat, warmup=2)
            row = {"optimizer": name if name == "Adam" else "SGD momentum", "params": f"{n / 1e6:g}M",
                   "tocha": harness.fmt_time(t_ours), "tocha GB/s": f"{bytes_per * n / t_ours / 1e9:.1f}",
                   "_tocha_s": t_ours}
            del tp, topt
            for label, kw in _variants(torch, name):
                try:
                    rp, ropt = _setup(torch, name, n, p0, g, **kw)
                    ropt.step()
                except (RuntimeError, ValueError) as e:  # variant not available in this torch build
                    row[label] = f"n/a ({type(e).__name__})"
                    continue
                t = harness.timeit(ropt.step, repeat=repeat, warmup=2)
                row[label] = harness.fmt_time(t)
                row[f"speed-up vs {label}"] = f"{t / t_ours:.2f}x"
                row[f"_{label}_s"] = t
                del rp, ropt
            rows.append(row)
    cols = ["optimizer", "params", "tocha", "tocha GB/s", "torch", "torch foreach", "torch fused",
            "speed-up vs torch", "speed-up vs torch foreach", "speed-up vs torch fused"]
    print(f"threads: {nt}, torch {torch.__version__}, repeats: {repeat} (median)")
    print(harness.table(rows, cols))
    harness.dump(args.json, rows, {"benchmark": "optim"})
    return rows


if __name__ == "__main__":
    p = harness.parser(__doc__.splitlines()[0])
    run(p.parse_args())
