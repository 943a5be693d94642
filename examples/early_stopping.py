"""Early stopping with a best-model checkpoint (slide 003): monitor validation accuracy, save the
model whenever it improves (`if acc > best_acc: save`), stop after `patience` epochs without
improvement, then restore the best weights. Shown twice: with the `fit()` helper and with a plain
loop. Writes the training curves to a PNG.

An over-sized MLP on the small 8x8 digits set over-fits quickly, so the stop is visible.

    python examples/early_stopping.py --out runs/early
    python examples/early_stopping.py --quick
"""

import argparse
import os

import tocha as torch
from tocha import nn
from tocha.datasets import Digits, make_moons
from tocha.training import EarlyStopping, evaluate, fit, plot_history
from tocha.utils.data import DataLoader, TensorDataset, random_split


def data(root, seed):
    try:
        tr = Digits(root, train=True)
        x, y = tr.data.float().div(255.0).reshape(len(tr), -1), tr.targets
        te = Digits(root, train=False)
        test = TensorDataset(te.data.float().div(255.0).reshape(len(te), -1), te.targets)
    except RuntimeError:
        x, y = make_moons(1200, noise=0.3, random_state=seed)
        x, y, test = x[:1000], y[:1000], TensorDataset(x[1000:], y[1000:])
    train, val = random_split(TensorDataset(x, y), [0.7, 0.3], generator=torch.Generator().manual_seed(seed))
    return train, val, test, x.shape[1], int(y.max().item()) + 1


def make_model(d, k):
    return nn.Sequential(nn.Linear(d, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, k))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--out", default="runs/early_stopping")
    p.add_argument("--root", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.patience = 3, 1
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    train, val, test, d, k = data(args.root, args.seed)
    train_loader = DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(args.seed))
    val_loader, test_loader = DataLoader(val, batch_size=256), DataLoader(test, batch_size=256)
    loss_fn = nn.CrossEntropyLoss()

    # 1) with the fit() helper and an EarlyStopping callback
    model = make_model(d, k)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    ckpt = os.path.join(args.out, "best.safetensors")
    stopper = EarlyStopping(monitor="val_accuracy", mode="max", patience=args.patience, checkpoint_path=ckpt)
    history = fit(model, train_loader, loss_fn, opt, epochs=args.epochs, val_loader=val_loader,
                  callbacks=[stopper], progress=False)
    png = plot_history(history, os.path.join(args.out, "curves.png"), title="early stopping",
                       mark_epoch=stopper.best_epoch)
    print(f"fit(): best val_accuracy={stopper.best:.4f} at epoch {stopper.best_epoch + 1}, "
          f"stopped at epoch {len(history.epochs)}; checkpoint {ckpt}; curves {png}")
    print(f"fit(): test accuracy of the restored best model: {evaluate(model, test_loader, loss_fn)['accuracy']:.4f}")

    # 2) the same recipe as a plain loop (slide 003: if acc > best_acc: torch.save(...))
    torch.manual_seed(args.seed)
    model = make_model(d, k)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    best_acc, best_epoch, wait = -1.0, -1, 0
    for epoch in range(args.epochs):
        for xb, yb in train_loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        acc = evaluate(model, val_loader, loss_fn)["accuracy"]
        if acc > best_acc:
            best_acc, best_epoch, wait = acc, epoch, 0
            torch.save(model.state_dict(), os.path.join(args.out, "model.safetensors"))
        else:
            wait += 1
            if wait >= args.patience:
                break
    model.load_state_dict(torch.load(os.path.join(args.out, "model.safetensors")))
    test_acc = evaluate(model, test_loader, loss_fn)["accuracy"]
    print(f"plain loop: best val_accuracy={best_acc:.4f} at epoch {best_epoch + 1}, stopped at epoch {epoch + 1}; "
          f"test accuracy {test_acc:.4f}")
    return test_acc


if __name__ == "__main__":
    main()
