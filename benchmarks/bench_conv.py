"""Convolution / pooling benchmark: tocha vs PyTorch CPU (same thread count) vs a NumPy im2col+matmul baseline.

Times forward and forward+backward (gradients w.r.t. input and weight; bias too) as medians over a few
repeats after a warm-up, tocha / PyTorch / NumPy sampled round-robin (harness.timeit_many) so background
load on a shared machine hits all three alike; checks tocha's output against PyTorch first, and prints a
Markdown table (ratio = PyTorch time / tocha time, so > 1 means tocha is faster; np-ratio likewise).

    PYTHONPATH=python python benchmarks/bench_conv.py --threads 2 [--repeat 5] [--json out.json] [--only conv]
"""

import harness  # noqa: F401  (pins BLAS/OpenMP threads before NumPy loads)
import numpy as np
import tocha
import tocha.nn.functional as F
import torch
from harness import dump, machine, parser, set_threads, table, timeit_many


# -------------------------------------------------------------------------- NumPy im2col baseline
def _np_im2col(x, kh, kw, s, p):
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
    OH = (H + 2 * p - kh) // s + 1
    OW = (W + 2 * p - kw) // s + 1
    col = np.empty((N, C, kh, kw, OH, OW), x.dtype)
    for i in range(kh):
        for j in range(kw):
            col[:, :, i, j] = xp[:, :, i:i + s * OH:s, j:j + s * OW:s]
    return col.reshape(N, C * kh * kw, OH * OW), OH, OW


def np_conv_fwd(x, w, b, s, p):
    K, C, kh, kw = w.shape
    col, OH, OW = _np_im2col(x, kh, kw, s, p)
    y = np.matmul(w.reshape(K, -1), col) + b[:, None]
    return y.reshape(x.shape[0], K, OH, OW), col


def np_conv_fwd_bwd(x, w, b, s, p):
    N, C, H, W = x.shape
    K, _, kh, kw = w.shape
    y, col = np_conv_fwd(x, w, b, s, p)
    g = np.ones_like(y).reshape(N, K, -1)
    dw = np.einsum("nkl,ncl->kc", g, col).reshape(w.shape)
    db = g.sum(axis=(0, 2))
    dcol = np.matmul(w.reshape(K, -1).T, g).reshape(N, C, kh, kw, y.shape[2], y.shape[3])
    dxp = np.zeros((N, C, H + 2 * p, W + 2 * p), x.dtype)
    OH, OW = y.shape[2], y.shape[3]
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + s * OH:s, j:j + s * OW:s] += dcol[:, :, i, j]
    return y, dw, db, dxp[:, :, p:p + H, p:p + W]


# ----------------------------------------------------------------------------------------- timing
def bench(fns, repeat, warmup=1):
    """Median seconds per call of each candidate (dict name -> callable, None entries skipped)."""
    return timeit_many({k: f for k, f in fns.items() if f is not None}, repeat=repeat, warmup=warmup)


def conv_case(name, N, C, H, W, K, k, stride=1, padding=0, groups=1, nd=2):
    rng = np.random.default_rng(0)
    shape = (N, C, H, W) if nd == 2 else (N, C, W)
    wshape = (K, C // groups, k, k) if nd == 2 else (K, C // groups, k)
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal(wshape) * 0.1).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    ft = F.conv2d if nd == 2 else F.conv1d
    fp = torch.nn.functional.conv2d if nd == 2 else torch.nn.functional.conv1d
    kw = dict(stride=stride, padding=padding, groups=groups)
    return dict(name=name, x=x, w=w, b=b, ft=ft, fp=fp, kw=kw, nd=nd, flops=None)


CONV_CASES = [
    ("(64,1,28,28)->32 3x3 [mnist]", (64, 1, 28, 28, 32, 3)),
    ("(64,32,26,26)->64 3x3 [mnist]", (64, 32, 26, 26, 64, 3)),
    ("(64,32,14,14)->64 3x3 p1", (64, 32, 14, 14, 64, 3, 1, 1)),
    ("(32,64,32,32)->64 3x3 p1", (32, 64, 32, 32, 64, 3, 1, 1)),
    ("(64,3,32,32)->16 5x5", (64, 3, 32, 32, 16, 5)),
    ("depthwise (32,64,32,32) 3x3 g64 p1", (32, 64, 32, 32, 64, 3, 1, 1, 64)),
    ("conv1d (32,16,1000)->32 k5", (32, 16, 1, 1000, 32, 5, 1, 0, 1, 1)),
]


def run_conv(repeat, rows):
    for name, args in CONV_CASES:
        c = conv_case(name, *args)
        xt, wt, bt = (tocha.tensor(a) for a in (c["x"], c["w"], c["b"]))
        xp, wp, bp = (torch.tensor(a) for a in (c["x"], c["w"], c["b"]))
        yt = c["ft"](xt, wt, bt, **c["kw"])
        yp = c["fp"](xp, wp, bp, **c["kw"])
        err = float(np.abs(yt.numpy() - yp.numpy()).max())
        assert err < 1e-3 * max(1.0, float(np.abs(yp.numpy()).max())), f"{name}: mismatch {err}"

        def fwd_t():
            c["ft"](xt, wt, bt, **c["kw"])

        def fwd_p():
            with torch.no_grad():
                c["fp"](xp, wp, bp, **c["kw"])

        xt2, wt2, bt2 = (tocha.tensor(a, requires_grad=True) for a in (c["x"], c["w"], c["b"]))
        xp2, wp2, bp2 = (torch.tensor(a, requires_grad=True) for a in (c["x"], c["w"], c["b"]))

        def fb_t():
            c["ft"](xt2, wt2, bt2, **c["kw"]).sum().backward()

        def fb_p():
            c["fp"](xp2, wp2, bp2, **c["kw"]).sum().backward()

        np_ok = c["nd"] == 2 and c["kw"]["groups"] == 1
        s, p = c["kw"]["stride"], c["kw"]["padding"]
        for mode, ft, fp, fn in (("fwd", fwd_t, fwd_p, lambda: np_conv_fwd(c["x"], c["w"], c["b"], s, p)),
                                 ("fwd+bwd", fb_t, fb_p, lambda: np_conv_fwd_bwd(c["x"], c["w"], c["b"], s, p))):
            t = bench({"tocha": ft, "torch": fp, "numpy": fn if np_ok else None}, repeat)
            tt, tp, tn = t["tocha"], t["torch"], t.get("numpy")
            rows.append(dict(op=name, mode=mode, tocha_ms=tt * 1e3, torch_ms=tp * 1e3,
                             numpy_ms=None if tn is None else tn * 1e3, ratio=tp / tt,
                             np_ratio=None if tn is None else tn / tt))


POOL_CASES = [
    ("max_pool2d 2x2 (64,64,24,24)", lambda m, x: m.nn.functional.max_pool2d(x, 2)),
    ("avg_pool2d 2x2 (64,64,24,24)", lambda m, x: m.nn.functional.avg_pool2d(x, 2)),
    ("adaptive_avg_pool2d ->1 (64,64,24,24)", lambda m, x: m.nn.functional.adaptive_avg_pool2d(x, 1)),
    ("adaptive_avg_pool2d ->(5,7) (64,64,24,24)", lambda m, x: m.nn.functional.adaptive_avg_pool2d(x, (5, 7))),
]


def np_pool(x, kind):
    N, C, H, W = x.shape
    v = x.reshape(N, C, H // 2, 2, W // 2, 2)
    return v.max(axis=(3, 5)) if kind == "max" else v.mean(axis=(3, 5))


def run_pool(repeat, rows):
    x = np.random.default_rng(0).standard_normal((64, 64, 24, 24)).astype(np.float32)
    for name, fn in POOL_CASES:
        xt, xp = tocha.tensor(x), torch.tensor(x)
        np.testing.assert_allclose(fn(tocha, xt).numpy(), fn(torch, xp).numpy(), rtol=1e-5, atol=1e-5)
        xt2, xp2 = tocha.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)

        def fwd_p():
            with torch.no_grad():
                fn(torch, xp)

        kind = "max" if name.startswith("max") else "avg" if name.startswith("avg") else None
        for mode, ft, fp in (("fwd", lambda: fn(tocha, xt), fwd_p),
                             ("fwd+bwd", lambda: fn(tocha, xt2).sum().backward(),
                              lambda: fn(torch, xp2).sum().backward())):
            t = bench({"tocha": ft, "torch": fp,
                       "numpy": (lambda: np_pool(x, kind)) if (kind and mode == "fwd") else None}, repeat)
            tt, tp, tn = t["tocha"], t["torch"], t.get("numpy")
            rows.append(dict(op=name, mode=mode, tocha_ms=tt * 1e3, torch_ms=tp * 1e3,
                             numpy_ms=None if tn is None else tn * 1e3, ratio=tp / tt,
                             np_ratio=None if tn is None else tn / tt))


def main():
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["conv", "pool"], default=None)
    ap.set_defaults(repeat=5, threads=2)
    args = ap.parse_args()
    threads = set_threads(args.threads)
    repeat = 2 if args.quick else args.repeat
    rows = []
    if args.only in (None, "conv"):
        run_conv(repeat, rows)
    if args.only in (None, "pool"):
        run_pool(repeat, rows)

    def f(v):
        return "-" if v is None else f"{v:.2f}"

    m = machine()
    print(f"{m['processor']}, threads={threads}, gemm {m['gemm_isa']}, float32, median of {repeat}; "
          "ratio = reference time / tocha time (>1: tocha faster)\n")
    shown = [{"op": r["op"], "pass": r["mode"], "tocha ms": f(r["tocha_ms"]), "torch ms": f(r["torch_ms"]),
              "numpy ms": f(r["numpy_ms"]), "vs torch": f(r["ratio"]) + "x",
              "vs numpy": f(r["np_ratio"]) + ("x" if r["np_ratio"] else "")} for r in rows]
    print(table(shown, ["op", "pass", "tocha ms", "torch ms", "numpy ms", "vs torch", "vs numpy"]))
    dump(args.json, rows)


if __name__ == "__main__":
    main()
