"""Shared benchmark harness: warm-up, repeated timing, medians, ratios, Markdown/JSON output.

Every benchmark checks correctness against its reference before timing it.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time


def _pin_threads_from_argv():
    """Apply --threads to OpenBLAS/OpenMP via the environment before NumPy/torch load their pools."""
    for i, a in enumerate(sys.argv):
        val = a.split("=", 1)[1] if a.startswith("--threads=") else (
            sys.argv[i + 1] if a == "--threads" and i + 1 < len(sys.argv) else None)
        if val:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = val


_pin_threads_from_argv()


def timeit(fn, repeat=15, warmup=3, min_time=0.0):
    """Median seconds per call of ``fn`` (each sample may loop to last at least ``min_time``)."""
    return timeit_many({"fn": fn}, repeat, warmup, min_time, settle=0.0)["fn"]


def timeit_many(fns, repeat=15, warmup=3, min_time=0.0, settle=None):
    """Median seconds per call of each function in ``fns`` (a dict name -> callable), sampled round-robin.

    Interleaving the samples means background load on a shared machine hits every candidate alike, so the
    ratios stay meaningful even when the absolute times wobble. With several threads, each library's idle
    worker threads keep spinning for a while after its call returns (OpenBLAS for ~0.1 s), which would
    steal a core from the next candidate; ``settle`` seconds of untimed calls of the candidate itself
    before each sample let them go quiet (default: 0.25 s when more than one thread is in use, else 0).
    (Sleeping instead was measured to leave the next sample slow: clocks/caches cool down.)
    """
    if settle is None:
        settle = 0.25 if _THREADS[0] > 1 else 0.0
    inner = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        inner[name] = 1
        if min_time > 0:
            t0 = time.perf_counter()
            fn()
            inner[name] = max(1, int(min_time / max(time.perf_counter() - t0, 1e-9)))
    samples = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            n = inner[name]
            if settle:  # run this candidate untimed for `settle` s: the previous library's pool goes idle
                t_end = time.perf_counter() + settle  # while this one's threads, clocks and caches warm up
                fn()
                while time.perf_counter() < t_end:
                    fn()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(v) for name, v in samples.items()}


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, default=None, help="threads for tocha/numpy-free refs/torch")
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--json", type=str, default=None, help="write results to this JSON file")
    p.add_argument("--quick", action="store_true", help="fewer repeats and shapes (smoke run)")
    return p


_THREADS = [1]  # thread count in use, set by set_threads (timeit_many settles between samples when > 1)


def set_threads(n):
    import tocha

    if n:
        tocha.set_num_threads(n)
        try:
            import torch

            torch.set_num_threads(n)
        except ImportError:
            pass
    _THREADS[0] = tocha.get_num_threads()
    return _THREADS[0]


def fmt_time(s):
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def table(rows, columns):
    """Markdown table from a list of dicts."""
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |")
    return "\n".join(out)


def machine():
    import tocha

    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "threads": tocha.get_num_threads(),
            "gemm_isa": tocha._C.gemm_isa()}


def dump(path, rows, extra=None):
    if not path:
        return
    with open(path, "w") as f:
        json.dump({"machine": machine(), "results": rows, **(extra or {})}, f, indent=2)
