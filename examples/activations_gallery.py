"""Plot every tocha activation and its derivative (computed by tocha's autograd) into one PNG.

Usage:
    python examples/activations_gallery.py [OUTPUT.png]      (default: examples/out/activations.png)

Each panel shows f(x) (solid) and f'(x) (dashed) on [-4, 4]. The derivative is obtained by
backpropagating ones through the activation, so the picture doubles as a visual check of the
backward kernels: e.g. the binary step's derivative is 0 everywhere (by definition), ReLU6's and
Hardtanh's drop to 0 outside their linear range, SELU's jumps at 0.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import tocha
from tocha import nn

ACTIVATIONS = [
    ("Identity", nn.Identity()), ("Sigmoid", nn.Sigmoid()), ("Tanh", nn.Tanh()), ("ArcTan", nn.ArcTan()),
    ("ReLU", nn.ReLU()), ("LeakyReLU(0.1)", nn.LeakyReLU(0.1)), ("RReLU (eval)", nn.RReLU().eval()),
    ("PReLU (a=0.25)", nn.PReLU()), ("Binary step", nn.BinaryStep()), ("ELU", nn.ELU()),
    ("SELU", nn.SELU()), ("CELU(0.5)", nn.CELU(0.5)), ("GELU", nn.GELU()), ("GELU (tanh)", nn.GELU("tanh")),
    ("SiLU", nn.SiLU()), ("Mish", nn.Mish()), ("Softsign", nn.Softsign()), ("ISRU", nn.ISRU()),
    ("ISRLU", nn.ISRLU()), ("SQNL", nn.SQNL()), ("Bipolar ReLU (odd unit)", None),
    ("Softplus", nn.Softplus()), ("Hardtanh", nn.Hardtanh()), ("ReLU6", nn.ReLU6()),
    ("Hardsigmoid", nn.Hardsigmoid()), ("Hardswish", nn.Hardswish()), ("LogSigmoid", nn.LogSigmoid()),
]


def curve(module, x):
    """(f(x), f'(x)) as NumPy arrays via autograd."""
    xs = x.detach().clone().requires_grad_(True)
    if module is None:   # Bipolar ReLU on odd units: evaluate position 1 of a (n, 2) batch
        y = nn.BipolarReLU()(tocha.stack([xs, xs], 1))[:, 1]
    else:
        y = module(xs)
    y.backward(tocha.ones_like(y))
    return y.detach().numpy(), xs.grad.numpy()


def main(path=None):
    path = path or os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "activations.png")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    x = tocha.linspace(-4, 4, 801)
    cols = 6
    rows = (len(ACTIVATIONS) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), sharex=True)
    for ax, (name, mod) in zip(axes.flat, ACTIVATIONS):
        y, dy = curve(mod, x)
        ax.plot(x.numpy(), y, lw=1.8, label="f(x)")
        ax.plot(x.numpy(), dy, "--", lw=1.2, label="f'(x)")
        ax.axhline(0, color="0.8", lw=0.6)
        ax.axvline(0, color="0.8", lw=0.6)
        ax.set_title(name, fontsize=10)
        ax.set_ylim(-2.2, 4.2)
    for ax in list(axes.flat)[len(ACTIVATIONS):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("tocha activations (solid) and their autograd derivatives (dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"wrote {path} ({len(ACTIVATIONS)} activations)")
    return path


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
