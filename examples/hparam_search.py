"""Hyper-parameter search (slide 003): grid search over every combination, then random search
with distributions and a budget, for a small MLP on the two-moons problem. Prints the results
table (best first) and writes CSVs.

    python examples/hparam_search.py --out runs/hparam
    python examples/hparam_search.py --quick
"""

import argparse
import os

import tocha as torch
from tocha import nn
from tocha.datasets import make_moons
from tocha.training import GridSearch, RandomSearch, choice, loguniform, randint, uniform
from tocha.utils.data import DataLoader, TensorDataset

ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def make_train_fn(epochs, seed):
    x, y = make_moons(600, noise=0.25, random_state=seed)
    xtr, ytr, xva, yva = x[:400], y[:400], x[400:], y[400:]

    def train(cfg):
        torch.manual_seed(seed)
        layers, d = [], 2
        hidden = cfg["hidden"] if "hidden" in cfg else (cfg["width"],) * cfg["depth"]
        for h in hidden:
            layers += [nn.Linear(d, h), ACTS[cfg["act"]]()]
            d = h
        model = nn.Sequential(*layers, nn.Linear(d, 2))
        opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg.get("momentum", 0.9))
        loader = DataLoader(TensorDataset(xtr, ytr), batch_size=cfg.get("batch_size", 32), shuffle=True)
        loss_fn = nn.CrossEntropyLoss()
        for _ in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                loss_fn(model(xb), yb).backward()
                opt.step()
        with torch.no_grad():
            out = model(xva)
            return {"val_accuracy": (out.argmax(1) == yva).float().mean().item(),
                    "val_loss": loss_fn(out, yva).item()}
    return train


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--trials", type=int, default=12, help="random-search budget")
    p.add_argument("--out", default="runs/hparam_search")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.trials = 2, 2
    os.makedirs(args.out, exist_ok=True)
    train = make_train_fn(args.epochs, args.seed)

    grid = {"lr": [0.1, 0.001, 0.00001], "hidden": [(10, 10), (10, 5), (20, 5)], "act": ["sigmoid", "relu", "tanh"]}
    if args.quick:
        grid = {"lr": [0.1], "hidden": [(10, 10), (10, 5)], "act": ["relu"]}
    gs = GridSearch(train, grid, mode="max", metric="val_accuracy")
    print(f"grid search: {len(gs)} trainings")
    res = gs.run()
    print(res)
    res.to_csv(os.path.join(args.out, "grid.csv"))

    space = {"lr": loguniform(1e-3, 0.5), "momentum": uniform(0.5, 0.99), "batch_size": choice([16, 32, 64]),
             "width": randint(8, 64), "depth": [1, 2], "act": ["relu", "tanh"]}
    rs = RandomSearch(train, space, n_trials=args.trials, seed=args.seed, mode="max", metric="val_accuracy")
    print(f"\nrandom search: budget {args.trials} trainings")
    rres = rs.run()
    print(rres)
    rres.to_csv(os.path.join(args.out, "random.csv"))
    print(f"\nbest grid config:   {res.best_config}  val_accuracy={res.best_score:.4f}")
    print(f"best random config: {rres.best_config}  val_accuracy={rres.best_score:.4f}")
    return res.best_score, rres.best_score


if __name__ == "__main__":
    main()
