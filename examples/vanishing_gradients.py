"""Vanishing gradients, measured (slides 001, Glorot & Bengio 2010): a deep sigmoid network with
N(0, 1) weights passes almost no gradient back to its first layers; Xavier init, tanh, and ReLU with
Kaiming init keep the per-layer gradient norms of the same order.

For each configuration the script builds the same deep MLP (``--depth`` hidden layers of
``--width`` units), prints the gradient norm ||dL/dW_l|| of every layer at initialisation, the ratio
first/last layer, and then trains each network for ``--steps`` mini-batch SGD steps on a 2-class
"circles" problem and reports the loss and accuracy reached.

    python examples/vanishing_gradients.py [--depth 10] [--width 32] [--steps 300] [--seed 0]
"""

import argparse
import math

import numpy as np
import tocha as torch
import tocha.nn.functional as F
from tocha import nn
from tocha.nn import init


def circles(n, rng):
    """Points in 2-d labelled by whether they are inside the circle of radius 1 (balanced classes)."""
    r = np.sqrt(rng.uniform(0, 2, n))
    t = rng.uniform(0, 2 * math.pi, n)
    X = np.stack([r * np.cos(t), r * np.sin(t)], 1).astype(np.float32)
    return X, (r < 1).astype(np.int64)


def build(depth, width, act, init_name, gain=1.0):
    acts = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
    layers, d_in = [], 2
    for _ in range(depth):
        layers += [nn.Linear(d_in, width), acts[act]()]
        d_in = width
    layers.append(nn.Linear(d_in, 2))
    model = nn.Sequential(*layers)
    for m in model:
        if isinstance(m, nn.Linear):
            if init_name == "normal":
                init.normal_(m.weight, 0.0, 1.0)
            elif init_name == "xavier":
                init.xavier_uniform_(m.weight, gain=gain)
            elif init_name == "kaiming":
                init.kaiming_normal_(m.weight, nonlinearity="relu")
            init.zeros_(m.bias)
    return model


CONFIGS = [
    # (label, activation, init, gain)
    ("sigmoid + N(0,1)", "sigmoid", "normal", 1.0),
    ("sigmoid + Xavier", "sigmoid", "xavier", 1.0),
    ("sigmoid + Xavier x4", "sigmoid", "xavier", init.calculate_gain("logistic")),
    ("tanh + Xavier(5/3)", "tanh", "xavier", init.calculate_gain("tanh")),
    ("ReLU + Kaiming", "relu", "kaiming", 1.0),
]


def layer_grad_norms(model, X, y):
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    return [m.weight.grad.norm().item() for m in model if isinstance(m, nn.Linear)]


def train(model, X, y, steps, lr, batch, gen):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    n = X.shape[0]
    for step in range(steps):
        idx = torch.randint(0, n, (batch,), generator=gen)
        opt.zero_grad()
        F.cross_entropy(model(X[idx]), y[idx]).backward()
        # slides 001: clipping keeps the ReLU/normal runs from blowing up on an unlucky batch
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    with torch.no_grad():
        out = model(X)
        return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=10, help="hidden layers")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--steps", type=int, default=300, help="training steps per configuration")
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    Xn, yn = circles(args.n, rng)
    X, y = torch.tensor(Xn), torch.tensor(yn)
    norms, results = {}, {}
    for label, act, init_name, gain in CONFIGS:
        torch.manual_seed(args.seed)
        model = build(args.depth, args.width, act, init_name, gain)
        norms[label] = layer_grad_norms(model, X, y)
        results[label] = train(model, X, y, args.steps, args.lr, 64, torch.Generator().manual_seed(args.seed))

    labels = [c[0] for c in CONFIGS]
    print(f"MLP with {args.depth} hidden layers of {args.width} units; ||dL/dW_l|| at initialisation "
          f"(cross-entropy, {args.n} points):\n")
    print(f"{'layer':>6}" + "".join(f"{lab:>22}" for lab in labels))
    for i in range(args.depth + 1):
        name = "out" if i == args.depth else str(i + 1)
        print(f"{name:>6}" + "".join(f"{norms[lab][i]:>22.3e}" for lab in labels))
    print(f"{'1/out':>6}" + "".join(f"{norms[lab][0] / max(norms[lab][-1], 1e-30):>22.2e}" for lab in labels))
    print(f"\nafter {args.steps} SGD steps (lr {args.lr}, momentum 0.9, batch 64, clip 5):")
    print(f"{'':>6}" + "".join(f"{lab:>22}" for lab in labels))
    print(f"{'loss':>6}" + "".join(f"{results[lab][0]:>22.4f}" for lab in labels))
    print(f"{'acc':>6}" + "".join(f"{results[lab][1]:>22.3f}" for lab in labels))
    return norms, results


if __name__ == "__main__":
    main()
