"""Logistic regression (slides 000/004): h(x) = sigmoid(w . x + b), binary cross-entropy, gradient
descent, and a 0.5 threshold on the predicted probability to classify.

Task: tell apart the handwritten digits 3 and 8 from scikit-learn's 8x8 digits (falls back to
two Gaussian blobs when scikit-learn is not installed).

    python examples/logistic_regression.py            # ~89 % test accuracy (held-out writers) in seconds
    python examples/logistic_regression.py --quick
"""

import argparse

import tocha as torch
from tocha import nn
from tocha.datasets import Digits, make_blobs
from tocha.utils.data import DataLoader, TensorDataset, random_split


def load(root, seed):
    try:
        tr, te = Digits(root, train=True), Digits(root, train=False)
    except RuntimeError as e:
        print(f"digits unavailable ({e}); using two Gaussian blobs")
        X, y = make_blobs(600, centers=[[-1, -1], [1, 1]], cluster_std=1.0, random_state=seed)
        a, b = random_split(TensorDataset(X, y.float()), [0.8, 0.2], generator=torch.Generator().manual_seed(seed))
        return (X[a.indices], y[a.indices].float()), (X[b.indices], y[b.indices].float()), "blobs"

    def pick(ds):
        keep = (ds.targets == 3) | (ds.targets == 8)
        x = ds.data[keep].float().div(255.0).reshape(-1, 64)
        return x, (ds.targets[keep] == 8).float()
    return pick(tr), pick(te), "digits 3 vs 8 (" + tr.source + ")"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--root", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs = 3
    torch.manual_seed(args.seed)
    (xtr, ytr), (xte, yte), name = load(args.root, args.seed)
    print(f"data: {name}; train {len(ytr)}, test {len(yte)}, {xtr.shape[1]} features")

    model = nn.Sequential(nn.Linear(xtr.shape[1], 1), nn.Sigmoid())  # h(x) = sigma(w.x + b)
    loss_fn = nn.BCELoss()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    loader = DataLoader(TensorDataset(xtr, ytr.unsqueeze(1)), batch_size=args.batch_size, shuffle=True)

    def acc(x, y):
        with torch.no_grad():
            pred = (model(x).squeeze(1) >= args.threshold).float()  # classify with the 0.5 threshold
        return (pred == y).float().mean().item()

    for epoch in range(args.epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        if epoch == 0 or (epoch + 1) % max(args.epochs // 5, 1) == 0:
            with torch.no_grad():
                full = loss_fn(model(xtr), ytr.unsqueeze(1)).item()
            print(f"epoch {epoch + 1:3d}  loss={full:.4f}  train_acc={acc(xtr, ytr):.4f}  test_acc={acc(xte, yte):.4f}")
    test = acc(xte, yte)
    print(f"final test accuracy (threshold {args.threshold}): {test:.4f}")
    return test


if __name__ == "__main__":
    main()
