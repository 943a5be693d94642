"""Full-batch gradient descent vs stochastic GD (batch 1) vs mini-batch GD on the same problem
(slides 000/002/004). All three are the same ``SGD`` optimiser; only the batches fed to it differ:

* full batch (B = m): one exact-gradient step per epoch — smooth but few updates;
* SGD (B = 1): m noisy steps per epoch — many cheap updates, a jittery loss;
* mini-batch (1 < B < m, sampled without replacement): the usual compromise, and the one that
  uses vectorised kernels well.

Problem: two interleaved half-moons (2-d, 2 classes), an MLP 2 -> 16 -> 16 -> 2 with tanh,
cross-entropy loss, identical initial weights for the three runs. Prints the full-data loss after
every epoch, the number of updates, wall time and the final accuracy.

    python examples/gradient_descent_variants.py [--epochs 20] [--n 512] [--batch 32] [--seed 0]
"""

import argparse
import copy
import math
import time

import numpy as np
import tocha as torch
import tocha.nn.functional as F
from tocha import nn


def make_moons(n, noise, rng):
    """Two interleaved half circles, labels 0/1, standardised features."""
    t = rng.uniform(0, math.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    X = np.stack([x, y], 1) + noise * rng.standard_normal((n, 2))
    X = (X - X.mean(0)) / X.std(0)
    return X.astype(np.float32), (~upper).astype(np.int64)


def batches(n, batch_size, generator):
    """Index tensors of one epoch: a random permutation cut into batches (sampling without replacement)."""
    perm = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        yield perm[i:i + batch_size]


def train(model, X, y, batch_size, lr, epochs, seed):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history, updates = [], 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for idx in batches(len(X), batch_size, gen):
            opt.zero_grad()
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
            updates += 1
        with torch.no_grad():
            history.append(F.cross_entropy(model(X), y).item())
    elapsed = time.perf_counter() - t0
    with torch.no_grad():
        acc = (model(X).argmax(1) == y).float().mean().item()
    return history, updates, elapsed, acc


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--n", type=int, default=512, help="training examples (m)")
    p.add_argument("--batch", type=int, default=32, help="mini-batch size B")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    Xn, yn = make_moons(args.n, 0.15, rng)
    X, y = torch.tensor(Xn), torch.tensor(yn)
    torch.manual_seed(args.seed)
    base = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))
    # learning rates: larger steps for the exact gradient, smaller for the noisy per-sample one
    variants = [("full-batch GD", args.n, 0.5), ("SGD (batch 1)", 1, 0.02), (f"mini-batch (B={args.batch})",
                                                                           args.batch, 0.2)]
    results = []
    for name, bs, lr in variants:
        model = copy.deepcopy(base)  # same initial weights for every variant
        hist, updates, secs, acc = train(model, X, y, bs, lr, args.epochs, args.seed)
        results.append((name, bs, lr, hist, updates, secs, acc))

    print(f"two moons, m={args.n}, MLP 2-16-16-2 (tanh), {args.epochs} epochs, same initial weights\n")
    print("full-data loss after each epoch:")
    print("epoch " + "".join(f"{r[0]:>24}" for r in results))
    for e in range(args.epochs):
        print(f"{e + 1:5d} " + "".join(f"{r[3][e]:24.4f}" for r in results))
    print()
    print(f"{'variant':<24}{'B':>6}{'lr':>7}{'updates':>9}{'time':>9}{'final loss':>12}{'accuracy':>10}")
    for name, bs, lr, hist, updates, secs, acc in results:
        print(f"{name:<24}{bs:>6}{lr:>7}{updates:>9}{secs:>8.2f}s{hist[-1]:>12.4f}{acc:>10.3f}")
    return {r[0]: {"loss": r[3][-1], "accuracy": r[6], "updates": r[4]} for r in results}


if __name__ == "__main__":
    main()
