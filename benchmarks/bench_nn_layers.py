"""Benchmark: [nn] layers vs PyTorch CPU in the same process (forward + backward).

    python benchmarks/bench_nn_layers.py [--repeats N] [--threads T] [--json out.json]

Cases: BatchNorm2d (64, 32, 28, 28) and BatchNorm1d (2000, 512) train fwd+bwd; softmax + cross-entropy fwd+bwd on (256, 10) and
(256, 1000) logits; LayerNorm (4096, 512) fwd+bwd; ELU/SELU/GELU (2^20) fwd+bwd. Outputs are checked
against PyTorch before timing; the two libraries are timed alternately. Prints a Markdown table of medians (ms) and the ratio
torch / tocha (> 1 means tocha is faster).
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import tocha
import tocha.nn as tnn
import tocha.nn.functional as TF
from harness import timeit_many


def median_ms_pair(ft, fp, repeats, warmup=2):
    """Median ms of ft and fp, sampled round-robin (harness.timeit_many) so both see the same load."""
    settle = 0.25 if tocha.get_num_threads() > 1 else 0.0  # let the other library's spinning pool go idle
    t = timeit_many({"tocha": ft, "torch": fp}, repeat=repeats, warmup=warmup, settle=settle)
    return t["tocha"] * 1e3, t["torch"] * 1e3


def _pair(fn_t, fn_p, x, g=None):
    """Closures running fwd+bwd of the same computation in tocha and torch on copies of ``x``."""
    xt, xp = tocha.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    gt = None if g is None else tocha.tensor(g)
    gp = None if g is None else torch.tensor(g)

    def run_t():
        xt.grad = None
        y = fn_t(xt)
        y.backward(gt) if gt is not None else y.backward()

    def run_p():
        xp.grad = None
        y = fn_p(xp)
        y.backward(gp) if gp is not None else y.backward()
    return run_t, run_p, xt, xp


def _checked(name, pair, atol, rtol):
    run_t, run_p, xt, xp = pair
    run_t(), run_p()
    np.testing.assert_allclose(xt.grad.numpy(), xp.grad.numpy(), atol=atol, rtol=rtol)
    return name, run_t, run_p


def case_module(name, tmod, pmod, shape, seed, atol, rtol):
    """fwd+bwd of a tocha module and its torch twin on one random input (and output gradient) of ``shape``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    return _checked(f"{name} ({','.join(map(str, shape))}) fwd+bwd", _pair(tmod, pmod, x, g), atol, rtol)


def case_ce(n, c):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, c)).astype(np.float32)
    y = rng.integers(0, c, n)
    yt, yp = tocha.tensor(y), torch.tensor(y)
    pair = _pair(lambda v: TF.cross_entropy(v, yt), lambda v: torch.nn.functional.cross_entropy(v, yp), x)
    return _checked(f"softmax+cross-entropy ({n}x{c}) fwd+bwd", pair, 1e-6, 1e-4)


def case_act(name):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(1 << 20).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    pair = _pair(getattr(TF, name), getattr(torch.nn.functional, name), x, g)
    return _checked(f"{name} (2^20) fwd+bwd", pair, 1e-5, 1e-4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="threads for both libraries (0: default)")
    ap.add_argument("--json", help="write results to this JSON file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        tocha.set_num_threads(args.threads)
    cases = [case_module("BatchNorm2d", tnn.BatchNorm2d(32), torch.nn.BatchNorm2d(32), (64, 32, 28, 28), 0, 1e-3, 1e-3),
             case_module("BatchNorm1d", tnn.BatchNorm1d(512), torch.nn.BatchNorm1d(512), (2000, 512), 4, 1e-3, 1e-3),
             case_ce(256, 10), case_ce(256, 1000),
             case_module("LayerNorm", tnn.LayerNorm(512), torch.nn.LayerNorm(512), (4096, 512), 2, 1e-4, 1e-3),
             case_act("elu"),
             case_act("selu"), case_act("gelu")]
    rows = []
    print(f"threads: tocha {tocha.get_num_threads()}, torch {torch.get_num_threads()}; "
          f"median of {args.repeats}\n")
    print("| case | tocha (ms) | torch (ms) | torch/tocha |")
    print("|---|---:|---:|---:|")
    for name, ft, fp in cases:
        t, p = median_ms_pair(ft, fp, args.repeats)
        rows.append({"case": name, "tocha_ms": t, "torch_ms": p, "ratio": p / t})
        print(f"| {name} | {t:.3f} | {p:.3f} | {p / t:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": tocha.get_num_threads(), "repeats": args.repeats, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
