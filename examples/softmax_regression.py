"""Softmax regression on MNIST: one Linear(784, 10) layer trained with cross-entropy (softmax +
categorical cross-entropy, slide 002) and mini-batch SGD. Reaches ~92 % test accuracy.

    python examples/softmax_regression.py
    python examples/softmax_regression.py --quick
"""

import argparse
import time

import tocha as torch
from tocha import nn
from tocha.datasets import MNIST
from tocha.utils.data import DataLoader, TensorDataset


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--root", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.limit = 1, args.limit or 2000
    torch.manual_seed(args.seed)
    tr, te = MNIST(args.root, train=True), MNIST(args.root, train=False)
    print(f"data: {tr.source}")
    n = args.limit or len(tr)
    xtr = tr.data[:n].float().div(255.0).reshape(n, 784)
    ytr = tr.targets[:n]
    xte = te.data.float().div(255.0).reshape(len(te), 784)
    loader = DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size, shuffle=True)
    model = nn.Linear(784, 10)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        total = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
        with torch.no_grad():
            acc = (model(xte).argmax(1) == te.targets).float().mean().item()
        print(f"epoch {epoch + 1}/{args.epochs}  train_loss={total / n:.4f}  test_acc={acc:.4f}  "
              f"({time.perf_counter() - t0:.1f}s)")
    with torch.no_grad():
        probs = torch.softmax(model(xte[:5]), dim=1)
    print("softmax probabilities of the first 5 test images (rows sum to 1):")
    for row, label in zip(probs.tolist(), te.targets[:5].tolist()):
        print(f"  label {label}: predicted {max(range(10), key=lambda k: row[k])} with p={max(row):.3f}")
    print(f"final test accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    main()
